// A single-node Kafka broker (KRaft, combined broker+controller) from the Maven Central jars,
// on free loopback ports, log dirs on tmpfs.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { freePort, type Started, startDetached, waitUntil } from '../lib/proc.js';
import { requireTool, toolPaths } from '../lib/tools.js';

export interface KafkaService {
  brokers: string;
  port: number;
  process: Started;
}

const JAVA_OPTS = [
  '-Xms128m',
  '-Xmx512m',
  '-XX:+UseG1GC',
  '-XX:TieredStopAtLevel=1',
  '-Djava.awt.headless=true',
];

export async function startKafka(dir: string, port?: number): Promise<KafkaService> {
  const libs =
    requireTool(path.join(toolPaths().kafkaLibs, '.complete'), 'Kafka jars') && toolPaths().kafkaLibs;
  mkdirSync(dir, { recursive: true });
  const brokerPort = port ?? (await freePort());
  const controllerPort = await freePort();
  const cfg = path.join(dir, 'server.properties');
  writeFileSync(
    cfg,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${brokerPort},CONTROLLER://127.0.0.1:${controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${brokerPort}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      `log.dirs=${path.join(dir, 'logs')}`,
      'num.partitions=1',
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=1',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'transaction.state.log.num.partitions=1',
      'group.initial.rebalance.delay.ms=0',
      // Production brokers usually disable auto-creation; the relay creates its topic itself.
      'auto.create.topics.enable=false',
      '',
    ].join('\n'),
  );
  const log4j = path.join(dir, 'log4j.properties');
  writeFileSync(
    log4j,
    [
      'log4j.rootLogger=WARN, stdout',
      'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
      'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
      'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
      'log4j.logger.kafka.server.KafkaRaftServer=INFO',
      '',
    ].join('\n'),
  );
  const cp = `${libs}/*`;
  const logOpt = `-Dlog4j.configuration=file:${log4j}`;
  // Like `kafka-storage random-uuid`; an id starting with '-' would be read as a flag.
  let clusterId = randomBytes(16).toString('base64url');
  while (clusterId.startsWith('-')) clusterId = randomBytes(16).toString('base64url');
  execFileSync(
    'java',
    [
      ...JAVA_OPTS,
      logOpt,
      '-cp',
      cp,
      'kafka.tools.StorageTool',
      'format',
      '-t',
      clusterId,
      '-c',
      cfg,
      '--ignore-formatted',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  const proc = startDetached(
    'kafka',
    'java',
    [...JAVA_OPTS, logOpt, '-cp', cp, 'kafka.Kafka', cfg],
    path.join(dir, 'kafka.log'),
  );
  await waitUntil(
    proc,
    () =>
      new Promise((resolve) => {
        const s = net.connect(brokerPort, '127.0.0.1');
        s.once('connect', () => {
          s.destroy();
          resolve(true);
        });
        s.once('error', () => resolve(false));
      }),
  );
  return { brokers: `127.0.0.1:${brokerPort}`, port: brokerPort, process: proc };
}
