// Versioned schema migrations, applied in order by `runtime migrate` (see migrate.ts). Never edit a
// released migration: add a new one. Kept as TypeScript so the built image needs no asset copying.
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'batches, essays, rounds, comparisons, scores, outbox',
    sql: `
CREATE TABLE batches (
  uid           uuid PRIMARY KEY,             -- the CJBatch's metadata.uid
  namespace     text NOT NULL,
  name          text NOT NULL,
  config        jsonb NOT NULL,               -- frozen at start: scale, stopping, seed, pool settings
  budget_total  integer NOT NULL CHECK (budget_total > 0),
  budget_source text NOT NULL CHECK (budget_source IN ('spec', 'default')),
  created_at    timestamptz NOT NULL DEFAULT now(),
  finalized_at  timestamptz,
  outcome       text CHECK (outcome IN ('succeeded', 'failed')),
  outcome_reason text
);

CREATE TABLE essays (
  batch_uid uuid NOT NULL REFERENCES batches(uid) ON DELETE CASCADE,
  essay_id  text NOT NULL,
  text      text NOT NULL,
  sha256    text NOT NULL,
  is_anchor boolean NOT NULL,
  grade     text,                               -- anchors only
  PRIMARY KEY (batch_uid, essay_id),
  CHECK (is_anchor = (grade IS NOT NULL))
);

-- One row per scoring pass. Round r's scoring reads every judged comparison and plans round r+1.
CREATE TABLE rounds (
  batch_uid  uuid NOT NULL REFERENCES batches(uid) ON DELETE CASCADE,
  round      integer NOT NULL CHECK (round >= 0),
  decision   text NOT NULL CHECK (decision IN ('continue', 'stop')),
  reason     text NOT NULL,
  pairs      integer NOT NULL,                  -- pairs planned for the next round
  shards     integer NOT NULL,
  stability  jsonb NOT NULL,
  summary    jsonb NOT NULL,                    -- engine output besides per-essay scores (quality, components)
  history    jsonb NOT NULL,                    -- what the engine needs for lagged refits next time
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (batch_uid, round)
);

-- A comparison row is planned by scoring, leased by a worker, and written once with its outcome.
CREATE TABLE comparisons (
  id              bigserial PRIMARY KEY,
  batch_uid       uuid NOT NULL REFERENCES batches(uid) ON DELETE CASCADE,
  round           integer NOT NULL,
  shard           integer NOT NULL,
  essay_a         text NOT NULL,                -- shown first
  essay_b         text NOT NULL,
  status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'leased', 'succeeded', 'failed')),
  lease_owner     text,
  lease_expires   timestamptz,
  attempts        integer NOT NULL DEFAULT 0,
  winner          text CHECK (winner IN ('A', 'B')),
  confidence      real,
  justification   text,
  failure_reason  text,
  flags           text[] NOT NULL DEFAULT '{}',
  input_tokens    integer NOT NULL DEFAULT 0,
  output_tokens   integer NOT NULL DEFAULT 0,
  cache_read_tokens  integer NOT NULL DEFAULT 0,
  cache_write_tokens integer NOT NULL DEFAULT 0,
  latency_ms      integer,
  created_at      timestamptz NOT NULL DEFAULT now(),
  completed_at    timestamptz,
  UNIQUE (batch_uid, round, essay_a, essay_b),
  CHECK ((status = 'succeeded') = (winner IS NOT NULL)),
  CHECK (status <> 'failed' OR failure_reason IS NOT NULL)
);
CREATE INDEX comparisons_claim ON comparisons (batch_uid, round, shard, status);

CREATE TABLE scores (
  batch_uid      uuid NOT NULL REFERENCES batches(uid) ON DELETE CASCADE,
  essay_id       text NOT NULL,
  round          integer NOT NULL,
  theta          double precision NOT NULL,
  se             double precision NOT NULL,
  rank           integer NOT NULL,
  is_anchor      boolean NOT NULL,
  grade          jsonb,                          -- probabilities, modal, expected, interval
  PRIMARY KEY (batch_uid, essay_id)
);

-- Transactional outbox: results and their event are committed together; the relay publishes.
CREATE TABLE outbox (
  event_id     uuid PRIMARY KEY,
  batch_uid    uuid NOT NULL,
  event_type   text NOT NULL,
  topic        text NOT NULL,
  key          text NOT NULL,
  payload      jsonb NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  sent_at      timestamptz,
  attempts     integer NOT NULL DEFAULT 0,
  last_error   text,
  UNIQUE (batch_uid, event_type)
);
CREATE INDEX outbox_unsent ON outbox (created_at) WHERE sent_at IS NULL;
`,
  },
];
