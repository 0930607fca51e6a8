#!/usr/bin/env node
/**
 * The `runtime` entry point of the worker image: `runtime <command> [args]`. Each command lives
 * in commands/<name>.ts and exports `main(argv) → exit code`; modules load lazily so a worker
 * pod only loads what its command needs.
 */
type Command = { main(argv: string[]): Promise<number> };

const COMMANDS: Record<string, { about: string; load: () => Promise<Command> }> = {
  plan: {
    about: 'run the CJ engine once: JSON state on stdin, plan on stdout',
    load: () => import('./commands/plan.js'),
  },
  score: {
    about: 'scoring Job: fit the model, decide, plan the next round',
    load: () => import('./commands/score.js'),
  },
  migrate: { about: 'apply database migrations', load: () => import('./commands/migrate.js') },
  compare: {
    about: 'compare one shard of a round (the comparison Job pod)',
    load: () => import('./commands/compare.js'),
  },
  'fake-anthropic': {
    about: 'serve a fake Anthropic API on loopback (tests and demos)',
    load: () => import('./commands/fake-anthropic.js'),
  },
};

async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const cmd = name ? COMMANDS[name] : undefined;
  if (!cmd) {
    const list = Object.entries(COMMANDS)
      .map(([n, c]) => `  ${n.padEnd(16)} ${c.about}`)
      .join('\n');
    process.stderr.write(`${name ? `unknown command "${name}"\n` : ''}usage: runtime <command>\n${list}\n`);
    return 2;
  }
  return (await cmd.load()).main(rest);
}

run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    process.stderr.write(`${err?.stack ?? err}\n`);
    process.exitCode = 1;
  },
);
