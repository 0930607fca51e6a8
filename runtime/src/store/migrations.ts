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
  {
    version: 4,
    name: 'tenancy: per-batch roles, row-level security, limiter functions, per-batch limits, outbox parking',
    sql: `
-- Every function below pins its search_path to this schema (then pg_temp, last) so that a caller
-- cannot shadow a table or operator with objects of its own (SECURITY DEFINER hygiene).
SELECT set_config('search_path', quote_ident(current_schema()) || ', pg_temp', true);

-- One Postgres role per batch: the only database credentials a tenant namespace ever sees (the
-- <batch>-worker Secret). Created when the batch registers, NOLOGIN when it ends, dropped when it is
-- deleted (runtime/src/store/tenancy.ts). The operator's own role owns every table and bypasses the
-- policies as their owner; batch roles get row-level security and a short list of grants.
CREATE TABLE cj_batch_roles (
  role_name  text PRIMARY KEY,
  batch_uid  uuid NOT NULL UNIQUE,
  pool_key   text NOT NULL,                     -- "<namespace>/<name>": the only limiter it may use
  created_at timestamptz NOT NULL DEFAULT now(),
  retired_at timestamptz                         -- the batch ended: no rows, no limiter
);
ALTER TABLE cj_batch_roles ENABLE ROW LEVEL SECURITY;

-- The batch of the connected role (NULL for the operator and any other role). session_user, not
-- current_user: inside a SECURITY DEFINER function current_user is the owner.
CREATE FUNCTION cj_my_batch() RETURNS uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $fn$
  SELECT batch_uid FROM cj_batch_roles WHERE role_name = session_user AND retired_at IS NULL
$fn$;

-- For limiter functions: NULL when the caller is not a batch role (the operator, tests); the
-- caller's batch when it is one and the pool is its own; an error for any other pool.
CREATE FUNCTION cj_caller_batch(p_key text) RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $fn$
DECLARE r cj_batch_roles%ROWTYPE;
BEGIN
  SELECT * INTO r FROM cj_batch_roles WHERE role_name = session_user;
  IF NOT FOUND THEN RETURN NULL; END IF;
  IF r.retired_at IS NOT NULL OR r.pool_key IS DISTINCT FROM p_key THEN
    RAISE EXCEPTION 'role % may not use the limiter of pool %', session_user, p_key
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN r.batch_uid;
END
$fn$;

-- Row-level security: a batch role sees and writes only its own batch's rows. Tables it has no
-- grant on (outbox, limiter, migrations, roles) get RLS without policies too, so an accidental
-- grant still exposes nothing.
ALTER TABLE batches ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_batch ON batches FOR SELECT USING (uid = cj_my_batch());
ALTER TABLE essays ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_batch ON essays USING (batch_uid = cj_my_batch()) WITH CHECK (batch_uid = cj_my_batch());
ALTER TABLE rounds ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_batch ON rounds USING (batch_uid = cj_my_batch()) WITH CHECK (batch_uid = cj_my_batch());
ALTER TABLE comparisons ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_batch ON comparisons USING (batch_uid = cj_my_batch()) WITH CHECK (batch_uid = cj_my_batch());
ALTER TABLE scores ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_batch ON scores USING (batch_uid = cj_my_batch()) WITH CHECK (batch_uid = cj_my_batch());
ALTER TABLE llm_provider_batches ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_batch ON llm_provider_batches USING (batch_uid = cj_my_batch())
  WITH CHECK (batch_uid = cj_my_batch());
ALTER TABLE outbox ENABLE ROW LEVEL SECURITY;
ALTER TABLE llm_pool_limiter ENABLE ROW LEVEL SECURITY;
ALTER TABLE llm_pool_reservations ENABLE ROW LEVEL SECURITY;

-- Outbox: a row Kafka refuses for its own sake (a bad topic, too large) is parked with its reason
-- instead of blocking every later event; the batch shows it in a condition.
ALTER TABLE outbox ADD COLUMN parked_at timestamptz;
DROP INDEX outbox_unsent;
CREATE INDEX outbox_unsent ON outbox (created_at) WHERE sent_at IS NULL AND parked_at IS NULL;

-- Limiter. Rows are written by the operator only: one per pool (its own limits, never a batch's),
-- and one per batch with overrides (key "batch:<uid>", clamped to the pool), debited together with
-- the pool's. A retry-after block never lasts longer than max_block_ms.
ALTER TABLE llm_pool_limiter ADD COLUMN max_block_ms double precision NOT NULL DEFAULT 600000
  CHECK (max_block_ms > 0);
ALTER TABLE llm_pool_reservations ADD COLUMN batch_key text
  REFERENCES llm_pool_limiter(pool_key) ON DELETE SET NULL;
CREATE INDEX llm_pool_reservations_batch ON llm_pool_reservations (batch_key, lease_expires)
  WHERE settled_at IS NULL AND batch_key IS NOT NULL;

-- Bucket arithmetic of one limiter row at time p_t (same as BucketMath in
-- runtime/src/llm/limiter/postgres.ts): refilled levels, capacities, and the wait for an estimate.
CREATE FUNCTION cj_limiter_eval(l llm_pool_limiter, p_t timestamptz, p_req float8, p_in float8,
  p_out float8, p_idle_ms float8,
  OUT o_wait float8, OUT o_ramp_started timestamptz, OUT o_vr float8, OUT o_vi float8,
  OUT o_vo float8, OUT o_cr float8, OUT o_ci float8, OUT o_co float8)
LANGUAGE plpgsql IMMUTABLE SET search_path FROM CURRENT AS $fn$
DECLARE
  v_f float8; v_lr float8; v_li float8; v_lo float8; v_dt float8;
BEGIN
  o_ramp_started := l.ramp_started_at;
  IF l.ramp_ms > 0 AND l.last_grant_at IS NOT NULL
     AND extract(epoch FROM p_t - l.last_grant_at)::float8 * 1000 > p_idle_ms THEN
    o_ramp_started := p_t;  -- idle pool: ramp up again
  END IF;
  IF l.ramp_ms <= 0 THEN
    v_f := 1;
  ELSE
    v_f := least(1, greatest(l.ramp_initial, l.ramp_initial + (1 - l.ramp_initial)
             * extract(epoch FROM p_t - o_ramp_started)::float8 * 1000 / l.ramp_ms));
  END IF;
  v_lr := least(l.rpm, coalesce(l.server_rpm, l.rpm)) * l.safety * v_f;
  v_li := least(l.itpm, coalesce(l.server_itpm, l.itpm)) * l.safety * v_f;
  v_lo := least(l.otpm, coalesce(l.server_otpm, l.otpm)) * l.safety * v_f;
  o_cr := greatest(1, v_lr / 60 * l.burst_seconds);
  o_ci := greatest(1, v_li / 60 * l.burst_seconds);
  o_co := greatest(1, v_lo / 60 * l.burst_seconds);
  v_dt := greatest(0, extract(epoch FROM p_t - l.updated_at)::float8 * 1000);
  o_vr := least(o_cr, l.req_level + v_dt / 60000 * v_lr);
  o_vi := least(o_ci, l.in_level + v_dt / 60000 * v_li);
  o_vo := least(o_co, l.out_level + v_dt / 60000 * v_lo);
  o_wait := 0;
  -- an estimate bigger than a bucket waits for a full bucket, then drives it negative
  IF o_vr < least(p_req, o_cr) THEN o_wait := greatest(o_wait, ceil((least(p_req, o_cr) - o_vr) * 60000 / v_lr)); END IF;
  IF o_vi < least(p_in, o_ci) THEN o_wait := greatest(o_wait, ceil((least(p_in, o_ci) - o_vi) * 60000 / v_li)); END IF;
  IF o_vo < least(p_out, o_co) THEN o_wait := greatest(o_wait, ceil((least(p_out, o_co) - o_vo) * 60000 / v_lo)); END IF;
END
$fn$;

-- The grant decision, now also for the batch's own bucket and only on the caller's own pool.
-- Same signature and results as migration 3's.
DROP FUNCTION cj_limiter_reserve(text, uuid, text, double precision, double precision,
  double precision, double precision, double precision, double precision);
CREATE FUNCTION cj_limiter_reserve(
  p_key text, p_id uuid, p_owner text,
  p_req double precision, p_in double precision, p_out double precision,
  p_lease_ms double precision, p_idle_ms double precision, p_poll_ms double precision)
RETURNS TABLE (o_granted boolean, o_wait_ms double precision, o_why text,
               o_cap_req double precision, o_cap_in double precision, o_cap_out double precision)
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $fn$
DECLARE
  v_batch uuid := cj_caller_batch(p_key);
  l llm_pool_limiter%ROWTYPE;
  b llm_pool_limiter%ROWTYPE;
  v_has_b boolean := false;
  v_t timestamptz;
  v_n integer;
  e record;
  eb record;
  v_w float8;
  v_req float8 := greatest(coalesce(p_req, 0), 0);
  v_in float8 := greatest(coalesce(p_in, 0), 0);
  v_out float8 := greatest(coalesce(p_out, 0), 0);
  v_lease float8 := least(greatest(coalesce(p_lease_ms, 0), 1000), 600000);
BEGIN
  -- lock order everywhere: the pool's row, then the batch's
  SELECT * INTO l FROM llm_pool_limiter WHERE pool_key = p_key FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'limiter row for pool % is missing', p_key;
  END IF;
  IF v_batch IS NOT NULL THEN
    SELECT * INTO b FROM llm_pool_limiter WHERE pool_key = 'batch:' || v_batch FOR UPDATE;
    v_has_b := FOUND;
  END IF;
  v_t := clock_timestamp();
  IF l.blocked_until IS NOT NULL AND l.blocked_until > v_t THEN
    RETURN QUERY SELECT false, least(extract(epoch FROM l.blocked_until - v_t)::float8 * 1000, l.max_block_ms),
                        'blocked'::text, 0::float8, 0::float8, 0::float8;
    RETURN;
  END IF;
  SELECT count(*) INTO v_n FROM llm_pool_reservations
   WHERE pool_key = p_key AND settled_at IS NULL AND lease_expires > v_t;
  IF v_n >= l.max_concurrency THEN
    RETURN QUERY SELECT false, p_poll_ms, 'concurrency'::text, 0::float8, 0::float8, 0::float8;
    RETURN;
  END IF;
  IF v_has_b THEN
    SELECT count(*) INTO v_n FROM llm_pool_reservations
     WHERE batch_key = b.pool_key AND settled_at IS NULL AND lease_expires > v_t;
    IF v_n >= b.max_concurrency THEN
      RETURN QUERY SELECT false, p_poll_ms, 'concurrency'::text, 0::float8, 0::float8, 0::float8;
      RETURN;
    END IF;
  END IF;
  SELECT * INTO e FROM cj_limiter_eval(l, v_t, v_req, v_in, v_out, p_idle_ms);
  v_w := e.o_wait;
  IF v_has_b THEN
    SELECT * INTO eb FROM cj_limiter_eval(b, v_t, v_req, v_in, v_out, p_idle_ms);
    v_w := greatest(v_w, eb.o_wait);
  END IF;
  IF v_w > 0 THEN
    RETURN QUERY SELECT false, v_w, 'tokens'::text, e.o_cr, e.o_ci, e.o_co;
    RETURN;
  END IF;
  UPDATE llm_pool_limiter SET req_level = e.o_vr - v_req, in_level = e.o_vi - v_in, out_level = e.o_vo - v_out,
         updated_at = v_t, last_grant_at = v_t, ramp_started_at = e.o_ramp_started
   WHERE pool_key = p_key;
  IF v_has_b THEN
    UPDATE llm_pool_limiter SET req_level = eb.o_vr - v_req, in_level = eb.o_vi - v_in, out_level = eb.o_vo - v_out,
           updated_at = v_t, last_grant_at = v_t, ramp_started_at = eb.o_ramp_started
     WHERE pool_key = b.pool_key;
  END IF;
  INSERT INTO llm_pool_reservations (id, pool_key, batch_key, owner, granted_at, lease_expires, requests,
                                     input_tokens, output_tokens)
  VALUES (p_id, p_key, CASE WHEN v_has_b THEN b.pool_key END, left(p_owner, 253), v_t,
          v_t + make_interval(secs => v_lease / 1000),
          round(v_req)::integer, round(v_in)::integer, round(v_out)::integer);
  RETURN QUERY SELECT true, 0::float8, 'granted'::text, e.o_cr, e.o_ci, e.o_co;
END
$fn$;

-- Settle a reservation once with the reported usage; the difference to the estimate goes back to
-- (or is taken from) the pool's bucket and the batch's, capped at capacity.
CREATE FUNCTION cj_limiter_settle(p_id uuid, p_in double precision, p_out double precision)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $fn$
DECLARE
  r llm_pool_reservations%ROWTYPE;
  v_in integer := round(greatest(coalesce(p_in, 0), 0))::integer;
  v_out integer := round(greatest(coalesce(p_out, 0), 0))::integer;
BEGIN
  SELECT * INTO r FROM llm_pool_reservations WHERE id = p_id AND settled_at IS NULL FOR UPDATE;
  IF NOT FOUND THEN RETURN; END IF;
  PERFORM cj_caller_batch(r.pool_key);
  UPDATE llm_pool_reservations SET settled_at = clock_timestamp(), input_tokens = v_in, output_tokens = v_out
   WHERE id = p_id;
  UPDATE llm_pool_limiter l SET
    in_level = least(greatest(1, least(l.itpm, coalesce(l.server_itpm, l.itpm)) * l.safety / 60 * l.burst_seconds),
                     l.in_level + (r.input_tokens - v_in)),
    out_level = least(greatest(1, least(l.otpm, coalesce(l.server_otpm, l.otpm)) * l.safety / 60 * l.burst_seconds),
                      l.out_level + (r.output_tokens - v_out))
   WHERE l.pool_key IN (r.pool_key, r.batch_key);
END
$fn$;

-- Old settled or expired reservations of a pool.
CREATE FUNCTION cj_limiter_prune(p_key text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $fn$
BEGIN
  PERFORM cj_caller_batch(p_key);
  DELETE FROM llm_pool_reservations
   WHERE pool_key = p_key AND granted_at < clock_timestamp() - interval '2 minutes'
     AND (settled_at IS NOT NULL OR lease_expires < clock_timestamp());
END
$fn$;

-- A 429's retry-after blocks the whole pool, for at most max_block_ms from now.
CREATE FUNCTION cj_limiter_block(p_key text, p_delay_ms double precision) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $fn$
BEGIN
  PERFORM cj_caller_batch(p_key);
  UPDATE llm_pool_limiter SET
    blocked_until = least(clock_timestamp() + make_interval(secs => max_block_ms / 1000),
                          greatest(coalesce(blocked_until, '-infinity'::timestamptz),
                                   clock_timestamp() + make_interval(secs => least(greatest(coalesce(p_delay_ms, 0), 0), max_block_ms) / 1000))),
    throttled = throttled + 1, last_429_at = clock_timestamp()
   WHERE pool_key = p_key;
END
$fn$;

-- Rate-limit headers: a server-reported limit below the configured one becomes the pool's
-- effective limit (one at or above it clears that); a remaining count lowers the bucket level.
-- NULL means not reported. Levels are refilled at the old rate up to now first.
CREATE FUNCTION cj_limiter_observe(p_key text,
  p_lim_req double precision, p_lim_in double precision, p_lim_out double precision,
  p_rem_req double precision, p_rem_in double precision, p_rem_out double precision)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $fn$
DECLARE
  l llm_pool_limiter%ROWTYPE;
  v_t timestamptz;
  e record;
  c record;
  v_r float8; v_i float8; v_o float8;
BEGIN
  PERFORM cj_caller_batch(p_key);
  SELECT * INTO l FROM llm_pool_limiter WHERE pool_key = p_key FOR UPDATE;
  IF NOT FOUND THEN RETURN; END IF;
  v_t := clock_timestamp();
  SELECT * INTO e FROM cj_limiter_eval(l, v_t, 0, 0, 0, 'infinity'::float8);
  IF p_lim_req > 0 THEN l.server_rpm := CASE WHEN p_lim_req < l.rpm THEN p_lim_req END; END IF;
  IF p_lim_in > 0 THEN l.server_itpm := CASE WHEN p_lim_in < l.itpm THEN p_lim_in END; END IF;
  IF p_lim_out > 0 THEN l.server_otpm := CASE WHEN p_lim_out < l.otpm THEN p_lim_out END; END IF;
  SELECT * INTO c FROM cj_limiter_eval(l, v_t, 0, 0, 0, 'infinity'::float8);
  v_r := least(e.o_vr, c.o_cr, coalesce(greatest(p_rem_req, 0), 'infinity'::float8));
  v_i := least(e.o_vi, c.o_ci, coalesce(greatest(p_rem_in, 0), 'infinity'::float8));
  v_o := least(e.o_vo, c.o_co, coalesce(greatest(p_rem_out, 0), 'infinity'::float8));
  UPDATE llm_pool_limiter SET server_rpm = l.server_rpm, server_itpm = l.server_itpm,
         server_otpm = l.server_otpm, req_level = v_r, in_level = v_i, out_level = v_o, updated_at = v_t
   WHERE pool_key = p_key;
END
$fn$;

-- Only the operator (the owner) and the batch roles it grants may call these.
REVOKE ALL ON FUNCTION cj_my_batch(), cj_caller_batch(text),
  cj_limiter_eval(llm_pool_limiter, timestamptz, float8, float8, float8, float8),
  cj_limiter_reserve(text, uuid, text, float8, float8, float8, float8, float8, float8),
  cj_limiter_settle(uuid, float8, float8), cj_limiter_prune(text), cj_limiter_block(text, float8),
  cj_limiter_observe(text, float8, float8, float8, float8, float8, float8) FROM PUBLIC;

-- Creates (or finds) the role of a batch, with exactly the grants a worker and the scoring Job
-- need. p_verifier is a SCRAM-SHA-256 verifier computed by the caller, so no password in clear
-- ever reaches the server or its logs. Idempotent: a second call resets only the password.
CREATE FUNCTION cj_create_batch_role(p_uid uuid, p_pool text, p_verifier text, p_conn_limit integer)
RETURNS text LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  v_role text := 'cj_b_' || replace(p_uid::text, '-', '');
BEGIN
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
    EXECUTE format('ALTER ROLE %I LOGIN PASSWORD %L CONNECTION LIMIT %s', v_role, p_verifier, p_conn_limit);
  ELSE
    EXECUTE format('CREATE ROLE %I LOGIN PASSWORD %L NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT '
                   'NOREPLICATION NOBYPASSRLS CONNECTION LIMIT %s', v_role, p_verifier, p_conn_limit);
  END IF;
  -- a worker's statements are short; a hostile session must not hold locks on shared tables
  EXECUTE format('ALTER ROLE %I SET statement_timeout = %L', v_role, '300s');
  EXECUTE format('ALTER ROLE %I SET idle_in_transaction_session_timeout = %L', v_role, '15s');
  EXECUTE format('ALTER ROLE %I SET search_path = %s, pg_temp', v_role, quote_ident(current_schema()));
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', current_schema(), v_role);
  EXECUTE format('GRANT SELECT ON batches, essays TO %I', v_role);
  EXECUTE format('GRANT SELECT, INSERT ON rounds TO %I', v_role);
  EXECUTE format('GRANT SELECT, INSERT, UPDATE ON comparisons, scores, llm_provider_batches TO %I', v_role);
  EXECUTE format('GRANT USAGE ON SEQUENCE comparisons_id_seq TO %I', v_role);
  EXECUTE format('GRANT EXECUTE ON FUNCTION cj_my_batch(), '
    'cj_limiter_reserve(text, uuid, text, float8, float8, float8, float8, float8, float8), '
    'cj_limiter_settle(uuid, float8, float8), cj_limiter_prune(text), cj_limiter_block(text, float8), '
    'cj_limiter_observe(text, float8, float8, float8, float8, float8, float8) TO %I', v_role);
  INSERT INTO cj_batch_roles (role_name, batch_uid, pool_key) VALUES (v_role, p_uid, p_pool)
  ON CONFLICT (role_name) DO UPDATE SET pool_key = excluded.pool_key, retired_at = NULL;
  RETURN v_role;
END
$fn$;

-- The batch ended: the role can no longer log in and its open sessions see nothing.
CREATE FUNCTION cj_retire_batch_role(p_uid uuid) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  v_role text;
  v_pid integer;
BEGIN
  UPDATE cj_batch_roles SET retired_at = coalesce(retired_at, now()) WHERE batch_uid = p_uid
  RETURNING role_name INTO v_role;
  IF v_role IS NULL OR NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN RETURN; END IF;
  EXECUTE format('ALTER ROLE %I NOLOGIN', v_role);
  FOR v_pid IN SELECT pid FROM pg_stat_activity WHERE usename = v_role LOOP
    BEGIN
      PERFORM pg_terminate_backend(v_pid);
    EXCEPTION WHEN insufficient_privilege THEN
      NULL;  -- a non-superuser operator may not signal it; the session already sees no rows
    END;
  END LOOP;
END
$fn$;

-- The batch was deleted: revoke everything and drop the role. Returns false when the role could
-- not be dropped (it still owns or is granted something elsewhere); it stays NOLOGIN then.
CREATE FUNCTION cj_drop_batch_role(p_uid uuid) RETURNS boolean
LANGUAGE plpgsql SET search_path FROM CURRENT AS $fn$
DECLARE
  v_role text;
BEGIN
  PERFORM cj_retire_batch_role(p_uid);
  SELECT role_name INTO v_role FROM cj_batch_roles WHERE batch_uid = p_uid;
  DELETE FROM llm_pool_limiter WHERE pool_key = 'batch:' || p_uid;
  IF v_role IS NULL THEN RETURN true; END IF;
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = v_role) THEN
    EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA %I FROM %I', current_schema(), v_role);
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM %I', current_schema(), v_role);
    EXECUTE format('REVOKE ALL ON ALL FUNCTIONS IN SCHEMA %I FROM %I', current_schema(), v_role);
    EXECUTE format('REVOKE ALL ON SCHEMA %I FROM %I', current_schema(), v_role);
    BEGIN
      EXECUTE format('DROP ROLE %I', v_role);
    EXCEPTION WHEN dependent_objects_still_exist THEN
      RETURN false;
    END;
  END IF;
  DELETE FROM cj_batch_roles WHERE batch_uid = p_uid;
  RETURN true;
END
$fn$;
REVOKE ALL ON FUNCTION cj_create_batch_role(uuid, text, text, integer), cj_retire_batch_role(uuid),
  cj_drop_batch_role(uuid) FROM PUBLIC;
`,
  },
  {
    version: 5,
    name: 'tenancy: policies evaluate the caller once per statement',
    sql: `
-- A sub-select makes cj_my_batch() an init plan: evaluated once per statement, not once per row a
-- scan visits (the scoring pass reads every comparison of its batch).
ALTER POLICY own_batch ON batches USING (uid = (SELECT cj_my_batch()));
ALTER POLICY own_batch ON essays USING (batch_uid = (SELECT cj_my_batch()))
  WITH CHECK (batch_uid = (SELECT cj_my_batch()));
ALTER POLICY own_batch ON rounds USING (batch_uid = (SELECT cj_my_batch()))
  WITH CHECK (batch_uid = (SELECT cj_my_batch()));
ALTER POLICY own_batch ON comparisons USING (batch_uid = (SELECT cj_my_batch()))
  WITH CHECK (batch_uid = (SELECT cj_my_batch()));
ALTER POLICY own_batch ON scores USING (batch_uid = (SELECT cj_my_batch()))
  WITH CHECK (batch_uid = (SELECT cj_my_batch()));
ALTER POLICY own_batch ON llm_provider_batches USING (batch_uid = (SELECT cj_my_batch()))
  WITH CHECK (batch_uid = (SELECT cj_my_batch()));
`,
  },
  {
    version: 6,
    name: 'human judgements (kubectl cj audit) and audit events',
    sql: `
-- A teacher's judgements of pairs the LLM judged (kubectl cj audit): a separate judge, kept apart
-- from comparisons so the engine never fits them unless asked. winner is an essay id.
CREATE TABLE human_judgements (
  batch_uid  uuid NOT NULL REFERENCES batches(uid) ON DELETE CASCADE,
  judge      text NOT NULL,
  essay_a    text NOT NULL,                     -- shown first
  essay_b    text NOT NULL,
  winner     text NOT NULL CHECK (winner IN (essay_a, essay_b)),
  seconds    real,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (batch_uid, judge, essay_a, essay_b)
);
-- Like comparisons: a batch role could only ever see its own batch's rows (it has no grant today).
ALTER TABLE human_judgements ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_batch ON human_judgements USING (batch_uid = (SELECT cj_my_batch()))
  WITH CHECK (batch_uid = (SELECT cj_my_batch()));
`,
  },
  {
    version: 7,
    name: 'fair share of a pool between its batches',
    sql: `
SELECT set_config('search_path', quote_ident(current_schema()) || ', pg_temp', true);

-- Each batch's share of its pool (runtime/src/store/share.ts): written by the operator (the weight,
-- from spec.priority), advanced by cj_limiter_reserve only. Batch roles get no grant on it, and RLS
-- without policies hides it even from an accidental one: a batch can neither raise its weight nor
-- see another batch's. Weighted fair queuing on virtual time: vtime is the pool capacity the batch
-- was granted divided by its weight (pool-minutes per unit of weight).
CREATE TABLE llm_pool_shares (
  batch_uid     uuid PRIMARY KEY,
  pool_key      text NOT NULL,
  weight        double precision NOT NULL CHECK (weight > 0),
  vtime         double precision NOT NULL DEFAULT 0,
  last_ask_at   timestamptz,          -- the batch's last reserve call, granted or not
  waiting_since timestamptz           -- refused by the pool (not by its own limits) and still asking
);
CREATE INDEX llm_pool_shares_pool ON llm_pool_shares (pool_key);
ALTER TABLE llm_pool_shares ENABLE ROW LEVEL SECURITY;

-- Which batch each grant went to (a batch role's grants; NULL for other callers): the batch's
-- live share of the pool in its status.
ALTER TABLE llm_pool_reservations ADD COLUMN batch_uid uuid;
CREATE INDEX llm_pool_reservations_batch_uid ON llm_pool_reservations (batch_uid, granted_at)
  WHERE batch_uid IS NOT NULL;

-- The grant decision of migration 4 plus the fair share (same signature, results and grants; a new
-- reason 'share'). A batch with a share row that asks while another batch of the pool waits with a
-- smaller vtime (by more than a quarter second of the pool) yields: it is told to retry shortly, and the
-- pool's tokens stay for the batch behind. Nobody waits for a batch that does not ask (work
-- conserving), and a batch that was idle or latency-bound comes back level with the batches
-- asking now, so it cannot bank credit while it did not want the pool.
CREATE OR REPLACE FUNCTION cj_limiter_reserve(
  p_key text, p_id uuid, p_owner text,
  p_req double precision, p_in double precision, p_out double precision,
  p_lease_ms double precision, p_idle_ms double precision, p_poll_ms double precision)
RETURNS TABLE (o_granted boolean, o_wait_ms double precision, o_why text,
               o_cap_req double precision, o_cap_in double precision, o_cap_out double precision)
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $fn$
DECLARE
  -- a batch asks again within a second while it waits (PostgresRateLimiter's longest sleep)
  c_active constant interval := interval '2 seconds';
  -- how far (in time of the whole pool) a batch may run ahead of one that waits: small, since
  -- the tokens a batch leaves stay in the pool's bucket for the batch behind
  c_lead_ms constant float8 := 250;
  v_batch uuid := cj_caller_batch(p_key);
  l llm_pool_limiter%ROWTYPE;
  b llm_pool_limiter%ROWTYPE;
  s llm_pool_shares%ROWTYPE;
  v_has_b boolean := false;
  v_has_s boolean := false;
  v_t timestamptz;
  v_n integer;
  e record;
  eb record;
  v_w float8 := 0;
  v_cr float8 := 0; v_ci float8 := 0; v_co float8 := 0;
  v_why text;
  v_pool_wait boolean := false;  -- refused because of the pool (or the share), not the batch's own limits
  v_sum_w float8;
  v_min float8;
  v_lead float8;
  -- at least one request per grant: a caller asking for 0 would pass every rate and every share
  v_req float8 := greatest(coalesce(p_req, 1), 1);
  v_in float8 := greatest(coalesce(p_in, 0), 0);
  v_out float8 := greatest(coalesce(p_out, 0), 0);
  v_lease float8 := least(greatest(coalesce(p_lease_ms, 0), 1000), 600000);
BEGIN
  -- lock order everywhere: the pool's row, then the batch's, then the batch's share
  SELECT * INTO l FROM llm_pool_limiter WHERE pool_key = p_key FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'limiter row for pool % is missing', p_key;
  END IF;
  IF v_batch IS NOT NULL THEN
    SELECT * INTO b FROM llm_pool_limiter WHERE pool_key = 'batch:' || v_batch FOR UPDATE;
    v_has_b := FOUND;
    SELECT * INTO s FROM llm_pool_shares WHERE batch_uid = v_batch AND pool_key = p_key FOR UPDATE;
    v_has_s := FOUND;
  END IF;
  v_t := clock_timestamp();
  IF l.blocked_until IS NOT NULL AND l.blocked_until > v_t THEN
    v_why := 'blocked';
    v_w := least(extract(epoch FROM l.blocked_until - v_t)::float8 * 1000, l.max_block_ms);
  ELSE
    SELECT * INTO e FROM cj_limiter_eval(l, v_t, v_req, v_in, v_out, p_idle_ms);
    v_cr := e.o_cr; v_ci := e.o_ci; v_co := e.o_co;
  END IF;
  -- the batch's own limits first: a batch held back by its own override waits for nobody else
  IF v_why IS NULL AND v_has_b THEN
    SELECT count(*) INTO v_n FROM llm_pool_reservations
     WHERE batch_key = b.pool_key AND settled_at IS NULL AND lease_expires > v_t;
    IF v_n >= b.max_concurrency THEN
      v_why := 'concurrency'; v_w := p_poll_ms;
    ELSE
      SELECT * INTO eb FROM cj_limiter_eval(b, v_t, v_req, v_in, v_out, p_idle_ms);
      IF eb.o_wait > 0 THEN v_why := 'tokens'; v_w := eb.o_wait; END IF;
    END IF;
  END IF;
  IF v_why IS NULL THEN
    SELECT count(*) INTO v_n FROM llm_pool_reservations
     WHERE pool_key = p_key AND settled_at IS NULL AND lease_expires > v_t;
    IF v_n >= l.max_concurrency THEN
      v_why := 'concurrency'; v_w := p_poll_ms; v_pool_wait := true;
    END IF;
  END IF;
  IF v_has_s THEN
    SELECT min(vtime), sum(weight) INTO v_min, v_sum_w FROM llm_pool_shares
     WHERE pool_key = p_key AND batch_uid <> v_batch AND last_ask_at > v_t - c_active;
    v_sum_w := coalesce(v_sum_w, 0) + s.weight;
    v_lead := c_lead_ms / 60000 / v_sum_w;
    -- idle time earns no credit: a batch that comes back starts level with the least advanced
    -- of the batches asking now (only then: one that kept asking keeps what it is owed)
    IF v_min IS NOT NULL AND (s.last_ask_at IS NULL OR s.last_ask_at <= v_t - c_active) THEN
      s.vtime := greatest(s.vtime, v_min);
    END IF;
    IF v_why IS NULL THEN
      SELECT min(vtime) INTO v_min FROM llm_pool_shares
       WHERE pool_key = p_key AND batch_uid <> v_batch AND waiting_since IS NOT NULL
         AND last_ask_at > v_t - c_active;
      IF v_min IS NOT NULL AND s.vtime > v_min + v_lead THEN
        -- the time the batch behind needs to catch up at the full pool rate, re-checked soon
        v_why := 'share'; v_pool_wait := true;
        v_w := least(500, greatest(p_poll_ms, (s.vtime - v_min - v_lead) * 60000 * v_sum_w));
      END IF;
    END IF;
  END IF;
  IF v_why IS NULL THEN
    IF e.o_wait > 0 THEN v_why := 'tokens'; v_w := e.o_wait; v_pool_wait := true; END IF;
  END IF;
  IF v_has_s THEN
    UPDATE llm_pool_shares SET last_ask_at = v_t,
           waiting_since = CASE WHEN v_pool_wait THEN coalesce(waiting_since, v_t) END,
           -- a grant advances the batch's virtual time by its dominant share of the pool's minute
           vtime = s.vtime + CASE WHEN v_why IS NULL
             THEN greatest(v_req / l.rpm, v_in / l.itpm, v_out / l.otpm) / s.weight ELSE 0 END
     WHERE batch_uid = v_batch;
  END IF;
  IF v_why IS NOT NULL THEN
    RETURN QUERY SELECT false, v_w, v_why, v_cr, v_ci, v_co;
    RETURN;
  END IF;
  UPDATE llm_pool_limiter SET req_level = e.o_vr - v_req, in_level = e.o_vi - v_in, out_level = e.o_vo - v_out,
         updated_at = v_t, last_grant_at = v_t, ramp_started_at = e.o_ramp_started
   WHERE pool_key = p_key;
  IF v_has_b THEN
    UPDATE llm_pool_limiter SET req_level = eb.o_vr - v_req, in_level = eb.o_vi - v_in, out_level = eb.o_vo - v_out,
           updated_at = v_t, last_grant_at = v_t, ramp_started_at = eb.o_ramp_started
     WHERE pool_key = b.pool_key;
  END IF;
  INSERT INTO llm_pool_reservations (id, pool_key, batch_key, batch_uid, owner, granted_at, lease_expires,
                                     requests, input_tokens, output_tokens)
  VALUES (p_id, p_key, CASE WHEN v_has_b THEN b.pool_key END, v_batch, left(p_owner, 253), v_t,
          v_t + make_interval(secs => v_lease / 1000),
          round(v_req)::integer, round(v_in)::integer, round(v_out)::integer);
  RETURN QUERY SELECT true, 0::float8, 'granted'::text, e.o_cr, e.o_ci, e.o_co;
END
$fn$;
`,
  },
  {
    version: 8,
    name: 'slow start from the first call',
    sql: `
SELECT set_config('search_path', quote_ident(current_schema()) || ', pg_temp', true);

-- Migration 4's bucket arithmetic, but a row that never granted ramps from its first call, as an
-- idle one does: before, the ramp ran from the row's creation, so a pool created long before its
-- first batch started at full rate (the jump the slow start is there to avoid) while one created
-- with its batch ramped. Same signature and results.
CREATE OR REPLACE FUNCTION cj_limiter_eval(l llm_pool_limiter, p_t timestamptz, p_req float8, p_in float8,
  p_out float8, p_idle_ms float8,
  OUT o_wait float8, OUT o_ramp_started timestamptz, OUT o_vr float8, OUT o_vi float8,
  OUT o_vo float8, OUT o_cr float8, OUT o_ci float8, OUT o_co float8)
LANGUAGE plpgsql IMMUTABLE SET search_path FROM CURRENT AS $fn$
DECLARE
  v_f float8; v_lr float8; v_li float8; v_lo float8; v_dt float8;
BEGIN
  o_ramp_started := l.ramp_started_at;
  IF l.ramp_ms > 0 AND (l.last_grant_at IS NULL
      OR extract(epoch FROM p_t - l.last_grant_at)::float8 * 1000 > p_idle_ms) THEN
    o_ramp_started := p_t;  -- first call, or idle: the ramp starts now
  END IF;
  IF l.ramp_ms <= 0 THEN
    v_f := 1;
  ELSE
    v_f := least(1, greatest(l.ramp_initial, l.ramp_initial + (1 - l.ramp_initial)
             * extract(epoch FROM p_t - o_ramp_started)::float8 * 1000 / l.ramp_ms));
  END IF;
  v_lr := least(l.rpm, coalesce(l.server_rpm, l.rpm)) * l.safety * v_f;
  v_li := least(l.itpm, coalesce(l.server_itpm, l.itpm)) * l.safety * v_f;
  v_lo := least(l.otpm, coalesce(l.server_otpm, l.otpm)) * l.safety * v_f;
  o_cr := greatest(1, v_lr / 60 * l.burst_seconds);
  o_ci := greatest(1, v_li / 60 * l.burst_seconds);
  o_co := greatest(1, v_lo / 60 * l.burst_seconds);
  v_dt := greatest(0, extract(epoch FROM p_t - l.updated_at)::float8 * 1000);
  o_vr := least(o_cr, l.req_level + v_dt / 60000 * v_lr);
  o_vi := least(o_ci, l.in_level + v_dt / 60000 * v_li);
  o_vo := least(o_co, l.out_level + v_dt / 60000 * v_lo);
  o_wait := 0;
  -- an estimate bigger than a bucket waits for a full bucket, then drives it negative
  IF o_vr < least(p_req, o_cr) THEN o_wait := greatest(o_wait, ceil((least(p_req, o_cr) - o_vr) * 60000 / v_lr)); END IF;
  IF o_vi < least(p_in, o_ci) THEN o_wait := greatest(o_wait, ceil((least(p_in, o_ci) - o_vi) * 60000 / v_li)); END IF;
  IF o_vo < least(p_out, o_co) THEN o_wait := greatest(o_wait, ceil((least(p_out, o_co) - o_vo) * 60000 / v_lo)); END IF;
END
$fn$;
`,
  },
];
