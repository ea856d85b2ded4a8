-- pgward request ledger, version 1.
-- One row per idempotency key, written in the same transaction as the keyed work,
-- so the key row and the work share one commit record: after a failover the
-- presence of the row on the new primary is the proof that the work committed.
-- Idempotent: the installer runs it inside one transaction under an advisory lock
-- and records it in pgward.schema_version; re-running it changes nothing.

CREATE SCHEMA IF NOT EXISTS pgward;

-- Unpartitioned on purpose: a unique index on a partitioned table must include the
-- partition key, which would make (scope, key) unique only within one partition.
CREATE TABLE IF NOT EXISTS pgward.request_ledger (
  scope text NOT NULL,
  key text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
  -- SHA-256 (hex) of the normalized request; a retry under the key must match it.
  fingerprint text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  -- Filled before COMMIT; NULL only for transaction-form keys (the outcome is the COMMIT).
  command_tag text,
  -- The RowDescription message body, when the statement returned rows.
  row_description bytea,
  -- Concatenated DataRow messages (type byte and length included).
  data_rows bytea,
  -- The rows exceeded exactlyOnce.maxStoredResultBytes and were not stored.
  result_truncated boolean NOT NULL DEFAULT false,
  PRIMARY KEY (scope, key)
);

-- Retention GC deletes by age in batches; this index keeps each batch cheap.
CREATE INDEX IF NOT EXISTS request_ledger_created_at ON pgward.request_ledger (created_at);

REVOKE ALL ON pgward.request_ledger FROM PUBLIC;
GRANT USAGE ON SCHEMA pgward TO PUBLIC;

-- Claims a key for the current transaction. A concurrent claim of the same key
-- waits on the primary key until the first transaction ends. A key that is
-- already committed raises PW900, which aborts the transaction before the work
-- runs; the proxy catches that code and answers from pgward.lookup instead.
CREATE OR REPLACE FUNCTION pgward.claim(p_scope text, p_key text, p_fingerprint text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
  INSERT INTO pgward.request_ledger (scope, key, fingerprint)
  VALUES (p_scope, p_key, p_fingerprint)
  ON CONFLICT (scope, key) DO NOTHING;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pgward: idempotency key already claimed' USING ERRCODE = 'PW900';
  END IF;
END
$$;

-- Stores the outcome of the keyed work, in its transaction, before COMMIT.
CREATE OR REPLACE FUNCTION pgward.complete(
  p_scope text, p_key text, p_command_tag text, p_row_description bytea, p_data_rows bytea,
  p_result_truncated boolean)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
BEGIN
  UPDATE pgward.request_ledger
     SET command_tag = p_command_tag, row_description = p_row_description, data_rows = p_data_rows,
         result_truncated = p_result_truncated
   WHERE scope = p_scope AND key = p_key;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'pgward: no claim for key % in this transaction', p_key USING ERRCODE = 'PW901';
  END IF;
END
$$;

CREATE OR REPLACE FUNCTION pgward.lookup(p_scope text, p_key text)
RETURNS TABLE (fingerprint text, command_tag text, row_description bytea, data_rows bytea,
               result_truncated boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
  SELECT l.fingerprint, l.command_tag, l.row_description, l.data_rows, l.result_truncated
    FROM pgward.request_ledger l
   WHERE l.scope = p_scope AND l.key = p_key
$$;

-- Deletes up to p_batch rows older than p_retention; returns how many it deleted.
-- SKIP LOCKED keeps GC from waiting on (or blocking) live claims.
CREATE OR REPLACE FUNCTION pgward.gc(p_retention interval, p_batch integer)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
  deleted integer;
BEGIN
  DELETE FROM pgward.request_ledger
   WHERE ctid = ANY (ARRAY(
     SELECT ctid FROM pgward.request_ledger
      WHERE created_at < now() - p_retention
      ORDER BY created_at
      LIMIT p_batch
      FOR UPDATE SKIP LOCKED));
  GET DIAGNOSTICS deleted = ROW_COUNT;
  RETURN deleted;
END
$$;

REVOKE ALL ON FUNCTION pgward.gc(interval, integer) FROM PUBLIC;
