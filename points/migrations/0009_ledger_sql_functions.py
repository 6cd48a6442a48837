"""The hottest ledger operations as PL/pgSQL functions: a redemption in one round trip (issue 6's benchmark).

``points_ledger_take`` is ``points_redeem`` and ``points_hold``; ``points_ledger_commit`` is ``points_hold_commit``.
They do what the Python services do through ``Journal`` — the same account lock first, the same lots in the same
order, the same journal lines, allocations, lot states and totals — and are only called by those services
(points/services/sql.py), which map their answers to the same results and errors. Each statement of a PL/pgSQL
function sees the rows committed before it started, so reading the key and the lots after the lock sees what a
call that held the lock before had done (the Python services need a statement per step for the same reason).

A function answers with a JSON text: {"error": code, ...}, {"replay": true} (the key was used: the service
replays it), or what it wrote. Business refusals are answers, not exceptions, so a refusal inside a caller's
transaction leaves it usable; constraint violations raise as any statement's would.
"""

from django.db import migrations

FUNCTIONS_SQL = r"""
-- The lots a spend consumes, soonest-expiring first (points/services/spending.py spendable_lots).
CREATE OR REPLACE FUNCTION points_ledger_spendable(p_account_id bigint, p_now timestamptz, p_refused text[])
RETURNS TABLE (lot_id bigint, remaining numeric) LANGUAGE sql STABLE AS $$
    SELECT id, remaining FROM points_lot
    WHERE account_id = p_account_id AND state = 'active' AND remaining > 0
      AND (expires_at IS NULL OR expires_at > p_now) AND restriction <> ALL (p_refused)
    ORDER BY expires_at ASC NULLS LAST, id
$$;

-- Apply the allocations of some entries to their lots, once per lot, with Journal.entry's state rule: an active
-- or spent lot is spent when nothing is left in it or held from it, active otherwise; other states stay.
CREATE OR REPLACE FUNCTION points_ledger_apply(p_entry_ids bigint[]) RETURNS void LANGUAGE sql AS $$
    UPDATE points_lot AS lot
    SET remaining = lot.remaining + d.remaining_delta,
        held = lot.held + d.held_delta,
        state = CASE
            WHEN lot.state NOT IN ('active', 'spent') THEN lot.state
            WHEN lot.remaining + d.remaining_delta = 0 AND lot.held + d.held_delta = 0 THEN 'spent'
            ELSE 'active' END
    FROM (
        SELECT a.lot_id, sum(a.remaining_delta) AS remaining_delta, sum(a.held_delta) AS held_delta
        FROM points_allocation AS a WHERE a.entry_id = ANY (p_entry_ids) GROUP BY a.lot_id
    ) AS d
    WHERE lot.id = d.lot_id
$$;

-- The account's totals after an operation, and what of it expires within p_expiring_days (points_balance).
CREATE OR REPLACE FUNCTION points_ledger_balance(
    p_account points_account, p_now timestamptz, p_expiring_days integer
) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'available', p_account.available, 'pending', p_account.pending, 'held', p_account.held,
        'debt', p_account.debt,
        'expiring', CASE WHEN p_expiring_days IS NULL THEN NULL ELSE (
            SELECT coalesce(sum(remaining), 0.00) FROM points_lot
            WHERE account_id = p_account.id AND state = 'active' AND expires_at > p_now
              AND expires_at <= p_now + make_interval(days => p_expiring_days)
        ) END
    )
$$;

-- points_redeem (p_kind 'redeem') and points_hold (p_kind 'hold').
CREATE OR REPLACE FUNCTION points_ledger_take(
    p_kind text, p_customer_id bigint, p_balance_type text, p_amount numeric, p_key text, p_fingerprint text,
    p_first_order boolean, p_hold_expires_at timestamptz, p_now timestamptz, p_channel_id bigint,
    p_user_id integer, p_reason text, p_expiring_days integer
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_type_id bigint;
    v_account points_account%ROWTYPE;
    v_membership text;
    v_merged_into bigint;
    v_refused text[] := '{}';
    v_left numeric := p_amount;
    v_spendable numeric := 0.00;
    v_lot record;
    v_part numeric;
    v_lot_ids bigint[] := '{}';
    v_parts numeric[] := '{}';
    v_holding boolean := p_kind = 'hold';
    v_hold_id bigint;
    v_entry_id bigint;
BEGIN
    SELECT account.* INTO v_account FROM points_account AS account
    JOIN points_balancetype AS type ON type.id = account.balance_type_id
    WHERE account.customer_id = p_customer_id AND type.code = p_balance_type FOR UPDATE OF account;
    IF FOUND AND EXISTS (SELECT 1 FROM points_entry WHERE operation_key = p_key AND operation_seq = 0) THEN
        RETURN '{"replay": true}';
    END IF;
    IF v_account.id IS NULL THEN
        SELECT id INTO v_type_id FROM points_balancetype WHERE code = p_balance_type;
        IF v_type_id IS NULL THEN
            RETURN '{"error": "unknown_balance_type"}';
        END IF;
    END IF;
    SELECT membership, merged_into_id INTO v_membership, v_merged_into FROM customers_customer
    WHERE id = p_customer_id;
    IF v_merged_into IS NOT NULL THEN
        RETURN json_build_object('error', 'customer_merged', 'merged_into', v_merged_into)::text;
    END IF;
    IF v_account.id IS NULL THEN
        IF EXISTS (SELECT 1 FROM points_entry WHERE operation_key = p_key AND operation_seq = 0) THEN
            RETURN '{"replay": true}';
        END IF;
        RETURN json_build_object('error', 'insufficient_points', 'spendable', 0.00)::text;
    END IF;

    IF v_membership NOT IN ('blocked', 'anonymised') THEN
        IF v_membership <> 'member' THEN
            v_refused := v_refused || 'members_only'::text;
        END IF;
        IF NOT p_first_order THEN
            v_refused := v_refused || 'first_order'::text;
        END IF;
        FOR v_lot IN SELECT * FROM points_ledger_spendable(v_account.id, p_now, v_refused) LOOP
            v_spendable := v_spendable + v_lot.remaining;
            v_part := least(v_lot.remaining, v_left);
            v_lot_ids := v_lot_ids || v_lot.lot_id;
            v_parts := v_parts || v_part;
            v_left := v_left - v_part;
            EXIT WHEN v_left = 0;
        END LOOP;
    END IF;
    IF v_left > 0 THEN
        RETURN json_build_object('error', 'insufficient_points', 'spendable', v_spendable)::text;
    END IF;

    IF v_holding THEN
        INSERT INTO points_hold (account_id, amount, state, operation_key, expires_at, created_at, closed_at)
        VALUES (v_account.id, p_amount, 'open', p_key, p_hold_expires_at, p_now, NULL)
        RETURNING id INTO v_hold_id;
    END IF;
    INSERT INTO points_entry (
        account_id, kind, amount, available_delta, pending_delta, held_delta, debt_delta, operation_key,
        operation_seq, fingerprint, actor_channel_id, actor_user_id, reason, hold_id, reverses_id, created_at
    ) VALUES (
        v_account.id, p_kind, p_amount, -p_amount, 0, CASE WHEN v_holding THEN p_amount ELSE 0 END, 0, p_key,
        0, p_fingerprint, p_channel_id, p_user_id, p_reason, v_hold_id, NULL, p_now
    ) RETURNING id INTO v_entry_id;
    INSERT INTO points_allocation (entry_id, lot_id, remaining_delta, held_delta)
    SELECT v_entry_id, t.lot_id, -t.part, CASE WHEN v_holding THEN t.part ELSE 0 END
    FROM unnest(v_lot_ids, v_parts) WITH ORDINALITY AS t (lot_id, part, n) ORDER BY t.n;
    -- Each lot appears once and is active: what is left in it, or held from it, decides spent or active.
    UPDATE points_lot AS lot
    SET remaining = lot.remaining - t.part,
        held = lot.held + CASE WHEN v_holding THEN t.part ELSE 0 END,
        state = CASE WHEN lot.remaining - t.part = 0 AND lot.held + CASE WHEN v_holding THEN t.part ELSE 0 END = 0
            THEN 'spent' ELSE 'active' END
    FROM unnest(v_lot_ids, v_parts) AS t (lot_id, part)
    WHERE lot.id = t.lot_id;
    UPDATE points_account
    SET available = available - p_amount, held = held + CASE WHEN v_holding THEN p_amount ELSE 0 END,
        updated_at = p_now
    WHERE id = v_account.id
    RETURNING * INTO v_account;

    RETURN json_build_object(
        'account_id', v_account.id, 'balance_type_id', v_account.balance_type_id, 'hold_id', v_hold_id,
        'entry_ids', ARRAY[v_entry_id],
        'lot_ids', v_lot_ids, 'parts', v_parts,
        'balance', points_ledger_balance(v_account, p_now, p_expiring_days)
    )::text;
END
$$;

-- points_hold_commit: spend p_amount (all when NULL) of an open hold, release the rest; what was held from a
-- lot that expired meanwhile expires now.
CREATE OR REPLACE FUNCTION points_ledger_commit(
    p_hold_id bigint, p_amount numeric, p_key text, p_fingerprint text, p_now timestamptz, p_channel_id bigint,
    p_user_id integer, p_expiring_days integer
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_account_id bigint;
    v_account points_account%ROWTYPE;
    v_hold points_hold%ROWTYPE;
    v_amount numeric;
    v_left numeric;
    v_lot record;
    v_part numeric;
    v_spent_ids bigint[] := '{}';
    v_spent numeric[] := '{}';
    v_rest_ids bigint[] := '{}';
    v_rest numeric[] := '{}';
    v_rest_total numeric := 0.00;
    v_gone_ids bigint[] := '{}';
    v_gone numeric[] := '{}';
    v_gone_total numeric := 0.00;
    v_entry_ids bigint[] := '{}';
    v_entry_id bigint;
BEGIN
    SELECT account_id INTO v_account_id FROM points_hold WHERE id = p_hold_id;
    IF v_account_id IS NULL THEN
        RETURN '{"error": "hold_not_found"}';
    END IF;
    SELECT * INTO v_account FROM points_account WHERE id = v_account_id FOR UPDATE;
    IF EXISTS (SELECT 1 FROM points_entry WHERE operation_key = p_key AND operation_seq = 0) THEN
        RETURN '{"replay": true}';
    END IF;
    SELECT * INTO v_hold FROM points_hold WHERE id = p_hold_id;  -- again, under the account lock
    IF v_hold.state <> 'open' THEN
        RETURN json_build_object('error', 'hold_not_open', 'state', v_hold.state)::text;
    END IF;
    IF v_hold.expires_at <= p_now THEN
        RETURN '{"error": "hold_not_open", "state": "timed_out"}';
    END IF;
    v_amount := coalesce(p_amount, v_hold.amount);
    IF v_amount > v_hold.amount THEN
        RETURN json_build_object('error', 'invalid_amount', 'held', v_hold.amount)::text;
    END IF;

    v_left := v_amount;
    FOR v_lot IN
        SELECT lot.id, lot.state, held.points
        FROM (
            SELECT a.lot_id, sum(a.held_delta) AS points FROM points_allocation AS a
            JOIN points_entry AS e ON e.id = a.entry_id
            WHERE e.hold_id = p_hold_id GROUP BY a.lot_id
        ) AS held
        JOIN points_lot AS lot ON lot.id = held.lot_id
        WHERE held.points > 0
        ORDER BY lot.expires_at ASC NULLS LAST, lot.id
    LOOP
        v_part := least(v_lot.points, v_left);
        v_left := v_left - v_part;
        IF v_part > 0 THEN
            v_spent_ids := v_spent_ids || v_lot.id;
            v_spent := v_spent || v_part;
        END IF;
        IF v_lot.points > v_part THEN
            v_rest_ids := v_rest_ids || v_lot.id;
            v_rest := v_rest || (v_lot.points - v_part);
            v_rest_total := v_rest_total + (v_lot.points - v_part);
            IF v_lot.state = 'expired' THEN
                v_gone_ids := v_gone_ids || v_lot.id;
                v_gone := v_gone || (v_lot.points - v_part);
                v_gone_total := v_gone_total + (v_lot.points - v_part);
            END IF;
        END IF;
    END LOOP;

    INSERT INTO points_entry (
        account_id, kind, amount, available_delta, pending_delta, held_delta, debt_delta, operation_key,
        operation_seq, fingerprint, actor_channel_id, actor_user_id, reason, hold_id, reverses_id, created_at
    ) VALUES (
        v_account.id, 'redeem', v_amount, 0, 0, -v_amount, 0, p_key, 0, p_fingerprint, p_channel_id, p_user_id,
        '', p_hold_id, NULL, p_now
    ) RETURNING id INTO v_entry_id;
    v_entry_ids := v_entry_ids || v_entry_id;
    INSERT INTO points_allocation (entry_id, lot_id, remaining_delta, held_delta)
    SELECT v_entry_id, t.lot_id, 0, -t.part FROM unnest(v_spent_ids, v_spent) WITH ORDINALITY AS t (lot_id, part, n)
    ORDER BY t.n;
    IF v_rest_total > 0 THEN
        INSERT INTO points_entry (
            account_id, kind, amount, available_delta, pending_delta, held_delta, debt_delta, operation_key,
            operation_seq, fingerprint, actor_channel_id, actor_user_id, reason, hold_id, reverses_id, created_at
        ) VALUES (
            v_account.id, 'release', v_rest_total, v_rest_total, 0, -v_rest_total, 0, p_key, 1, '', p_channel_id,
            p_user_id, '', p_hold_id, NULL, p_now
        ) RETURNING id INTO v_entry_id;
        v_entry_ids := v_entry_ids || v_entry_id;
        INSERT INTO points_allocation (entry_id, lot_id, remaining_delta, held_delta)
        SELECT v_entry_id, t.lot_id, t.part, -t.part
        FROM unnest(v_rest_ids, v_rest) WITH ORDINALITY AS t (lot_id, part, n) ORDER BY t.n;
    END IF;
    IF v_gone_total > 0 THEN
        INSERT INTO points_entry (
            account_id, kind, amount, available_delta, pending_delta, held_delta, debt_delta, operation_key,
            operation_seq, fingerprint, actor_channel_id, actor_user_id, reason, hold_id, reverses_id, created_at
        ) VALUES (
            v_account.id, 'expire', v_gone_total, -v_gone_total, 0, 0, 0, p_key, 2, '', p_channel_id, p_user_id,
            '', NULL, NULL, p_now
        ) RETURNING id INTO v_entry_id;
        v_entry_ids := v_entry_ids || v_entry_id;
        INSERT INTO points_allocation (entry_id, lot_id, remaining_delta, held_delta)
        SELECT v_entry_id, t.lot_id, -t.part, 0 FROM unnest(v_gone_ids, v_gone) WITH ORDINALITY AS t (lot_id, part, n)
        ORDER BY t.n;
    END IF;
    PERFORM points_ledger_apply(v_entry_ids);
    UPDATE points_hold SET state = 'committed', closed_at = p_now WHERE id = p_hold_id;
    UPDATE points_account
    SET available = available + v_rest_total - v_gone_total, held = held - v_amount - v_rest_total,
        updated_at = p_now
    WHERE id = v_account.id
    RETURNING * INTO v_account;

    RETURN json_build_object(
        'account_id', v_account.id, 'customer_id', v_account.customer_id,
        'balance_type_id', v_account.balance_type_id,
        'balance_type', (SELECT code FROM points_balancetype WHERE id = v_account.balance_type_id),
        'entry_ids', v_entry_ids, 'amount', v_amount, 'lot_ids', v_spent_ids, 'parts', v_spent,
        'released', v_rest_total, 'expired', v_gone_total,
        'hold', json_build_object('amount', v_hold.amount, 'operation_key', v_hold.operation_key,
                                  'expires_at', v_hold.expires_at, 'created_at', v_hold.created_at),
        'balance', points_ledger_balance(v_account, p_now, p_expiring_days)
    )::text;
END
$$;
"""

DROP_SQL = """
DROP FUNCTION IF EXISTS points_ledger_commit(bigint, numeric, text, text, timestamptz, bigint, integer, integer);
DROP FUNCTION IF EXISTS points_ledger_take(
    text, bigint, text, numeric, text, text, boolean, timestamptz, timestamptz, bigint, integer, text, integer
);
DROP FUNCTION IF EXISTS points_ledger_balance(points_account, timestamptz, integer);
DROP FUNCTION IF EXISTS points_ledger_apply(bigint[]);
DROP FUNCTION IF EXISTS points_ledger_spendable(bigint, timestamptz, text[]);
"""


def create_functions(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTIONS_SQL, params=None)


def drop_functions(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("points", "0008_admin_list_indexes"), ("customers", "0003_admin_search_and_filter_indexes")]

    operations = [migrations.RunPython(create_functions, drop_functions)]
