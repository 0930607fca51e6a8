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
  {
    version: 2,
    name: 'pool-wide rate limiter, provider batches',
    sql: `
-- One row per LLMProviderPool (key "<namespace>/<name>"): the token buckets every worker pod of
-- the pool shares (runtime/src/llm/limiter/postgres.ts). Levels are stored as of updated_at and
-- refilled from the elapsed time under the row lock; all times come from the database clock.
CREATE TABLE llm_pool_limiter (
  pool_key          text PRIMARY KEY,
  -- configured limits (per minute) and the fraction of them we aim for
  rpm               double precision NOT NULL CHECK (rpm > 0),
  itpm              double precision NOT NULL CHECK (itpm > 0),
  otpm              double precision NOT NULL CHECK (otpm > 0),
  max_concurrency   integer NOT NULL CHECK (max_concurrency > 0),
  safety            double precision NOT NULL DEFAULT 0.95 CHECK (safety > 0 AND safety <= 1),
  burst_seconds     double precision NOT NULL DEFAULT 5 CHECK (burst_seconds > 0),
  -- limits the server reported (anthropic-ratelimit-*-limit), when lower than configured
  server_rpm        double precision,
  server_itpm       double precision,
  server_otpm       double precision,
  -- bucket levels as of updated_at
  req_level         double precision NOT NULL,
  in_level          double precision NOT NULL,
  out_level         double precision NOT NULL,
  updated_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
  -- slow start (acceleration limits): rate fraction grows from ramp_initial to 1 over ramp_ms
  ramp_started_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
  ramp_initial      double precision NOT NULL DEFAULT 1 CHECK (ramp_initial > 0 AND ramp_initial <= 1),
  ramp_ms           double precision NOT NULL DEFAULT 0 CHECK (ramp_ms >= 0),
  last_grant_at     timestamptz,
  -- pool-wide block from retry-after, and 429 bookkeeping for the pool status
  blocked_until     timestamptz,
  throttled         bigint NOT NULL DEFAULT 0,
  last_429_at       timestamptz
);

-- Reservations: one row per granted attempt. Unsettled rows whose lease has not expired are the
-- pool's in-flight requests (a crashed process's slots come back when their lease expires);
-- rows of the last minute give the pool's usage for its status. Old rows are pruned.
CREATE TABLE llm_pool_reservations (
  id             uuid PRIMARY KEY,
  pool_key       text NOT NULL REFERENCES llm_pool_limiter(pool_key) ON DELETE CASCADE,
  owner          text NOT NULL,
  granted_at     timestamptz NOT NULL,
  lease_expires  timestamptz NOT NULL,
  settled_at     timestamptz,
  requests       integer NOT NULL,
  input_tokens   integer NOT NULL,     -- reserved estimate, replaced by actual usage on settle
  output_tokens  integer NOT NULL
);
CREATE INDEX llm_pool_reservations_inflight ON llm_pool_reservations (pool_key, lease_expires)
  WHERE settled_at IS NULL;
CREATE INDEX llm_pool_reservations_recent ON llm_pool_reservations (pool_key, granted_at);

-- Message Batches submitted by batch_api workers (runtime/src/llm/batch-store-postgres.ts): the
-- provider batch id is stored before the first poll so a restarted worker resumes it.
CREATE TABLE llm_provider_batches (
  key                text PRIMARY KEY,
  scope              text NOT NULL,            -- e.g. "<batch uid>/<shard>"
  batch_uid          uuid REFERENCES batches(uid) ON DELETE CASCADE,
  provider_batch_id  text NOT NULL,
  round              integer NOT NULL,
  custom_ids         jsonb NOT NULL,           -- custom_id -> comparison id
  state              text NOT NULL CHECK (state IN ('submitted', 'ended', 'collected')),
  submitted_at       timestamptz NOT NULL,
  updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX llm_provider_batches_scope ON llm_provider_batches (scope);
`,
  },
  {
    version: 3,
    name: 'limiter: reserve in one statement',
    sql: `
-- The limiter's grant decision as one server-side statement: the pool row is locked only while
-- the function runs (well under a millisecond), never across client round trips, so a CPU-starved
-- worker cannot hold up the pool and many pods can reserve concurrently. Same arithmetic as
-- BucketMath in runtime/src/llm/limiter/postgres.ts. Returns granted, or how long to wait and why.
CREATE FUNCTION cj_limiter_reserve(
  p_key text, p_id uuid, p_owner text,
  p_req double precision, p_in double precision, p_out double precision,
  p_lease_ms double precision, p_idle_ms double precision, p_poll_ms double precision)
RETURNS TABLE (o_granted boolean, o_wait_ms double precision, o_why text,
               o_cap_req double precision, o_cap_in double precision, o_cap_out double precision)
LANGUAGE plpgsql AS $fn$
DECLARE
  l llm_pool_limiter%ROWTYPE;
  v_t timestamptz;
  v_n integer;
  v_f double precision;
  v_lr double precision; v_li double precision; v_lo double precision;
  v_cr double precision; v_ci double precision; v_co double precision;
  v_dt double precision;
  v_vr double precision; v_vi double precision; v_vo double precision;
  v_w double precision := 0;
BEGIN
  SELECT * INTO l FROM llm_pool_limiter WHERE pool_key = p_key FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'limiter row for pool % is missing', p_key;
  END IF;
  v_t := clock_timestamp();
  IF l.blocked_until IS NOT NULL AND l.blocked_until > v_t THEN
    RETURN QUERY SELECT false, extract(epoch FROM l.blocked_until - v_t)::float8 * 1000, 'blocked'::text,
                        0::float8, 0::float8, 0::float8;
    RETURN;
  END IF;
  SELECT count(*) INTO v_n FROM llm_pool_reservations
   WHERE pool_key = p_key AND settled_at IS NULL AND lease_expires > v_t;
  IF v_n >= l.max_concurrency THEN
    RETURN QUERY SELECT false, p_poll_ms, 'concurrency'::text, 0::float8, 0::float8, 0::float8;
    RETURN;
  END IF;
  IF l.ramp_ms > 0 AND l.last_grant_at IS NOT NULL
     AND extract(epoch FROM v_t - l.last_grant_at)::float8 * 1000 > p_idle_ms THEN
    l.ramp_started_at := v_t;  -- idle pool: ramp up again
  END IF;
  IF l.ramp_ms <= 0 THEN
    v_f := 1;
  ELSE
    v_f := least(1, greatest(l.ramp_initial, l.ramp_initial + (1 - l.ramp_initial)
             * extract(epoch FROM v_t - l.ramp_started_at)::float8 * 1000 / l.ramp_ms));
  END IF;
  -- per-minute rates: min(configured, server) x safety x ramp; capacity burst_seconds of it
  v_lr := least(l.rpm, coalesce(l.server_rpm, l.rpm)) * l.safety * v_f;
  v_li := least(l.itpm, coalesce(l.server_itpm, l.itpm)) * l.safety * v_f;
  v_lo := least(l.otpm, coalesce(l.server_otpm, l.otpm)) * l.safety * v_f;
  v_cr := greatest(1, v_lr / 60 * l.burst_seconds);
  v_ci := greatest(1, v_li / 60 * l.burst_seconds);
  v_co := greatest(1, v_lo / 60 * l.burst_seconds);
  v_dt := greatest(0, extract(epoch FROM v_t - l.updated_at)::float8 * 1000);
  v_vr := least(v_cr, l.req_level + v_dt / 60000 * v_lr);
  v_vi := least(v_ci, l.in_level + v_dt / 60000 * v_li);
  v_vo := least(v_co, l.out_level + v_dt / 60000 * v_lo);
  -- an estimate bigger than a bucket waits for a full bucket, then drives it negative
  IF v_vr < least(p_req, v_cr) THEN v_w := greatest(v_w, ceil((least(p_req, v_cr) - v_vr) * 60000 / v_lr)); END IF;
  IF v_vi < least(p_in, v_ci) THEN v_w := greatest(v_w, ceil((least(p_in, v_ci) - v_vi) * 60000 / v_li)); END IF;
  IF v_vo < least(p_out, v_co) THEN v_w := greatest(v_w, ceil((least(p_out, v_co) - v_vo) * 60000 / v_lo)); END IF;
  IF v_w > 0 THEN
    RETURN QUERY SELECT false, v_w, 'tokens'::text, v_cr, v_ci, v_co;
    RETURN;
  END IF;
  UPDATE llm_pool_limiter SET req_level = v_vr - p_req, in_level = v_vi - p_in, out_level = v_vo - p_out,
         updated_at = v_t, last_grant_at = v_t, ramp_started_at = l.ramp_started_at
   WHERE pool_key = p_key;
  INSERT INTO llm_pool_reservations (id, pool_key, owner, granted_at, lease_expires, requests,
                                     input_tokens, output_tokens)
  VALUES (p_id, p_key, p_owner, v_t, v_t + make_interval(secs => p_lease_ms / 1000),
          round(p_req)::integer, round(p_in)::integer, round(p_out)::integer);
  RETURN QUERY SELECT true, 0::float8, 'granted'::text, v_cr, v_ci, v_co;
END
$fn$;
`,
  },
];
