"""The two helpers of the ledger's PL/pgSQL functions become PL/pgSQL themselves, for their cached plans.

PostgreSQL plans a LANGUAGE sql function that it cannot inline afresh on every call; ``points_ledger_apply`` (an
UPDATE ... FROM a grouped subquery) and ``points_ledger_balance`` (a sub-select inside json_build_object) were
planned on every redemption, hold and commit, about a third of a millisecond each under the orders benchmark. A
PL/pgSQL function keeps its statements' plans for the session. Same statements, same answers.
"""

import importlib

from django.db import migrations

FUNCTIONS_SQL = r"""
CREATE OR REPLACE FUNCTION points_ledger_apply(p_entry_ids bigint[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
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
    WHERE lot.id = d.lot_id;
END
$$;

CREATE OR REPLACE FUNCTION points_ledger_balance(
    p_account points_account, p_now timestamptz, p_expiring_days integer
) RETURNS json LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_expiring numeric;
BEGIN
    IF p_expiring_days IS NOT NULL THEN
        SELECT coalesce(sum(remaining), 0.00) INTO v_expiring FROM points_lot
        WHERE account_id = p_account.id AND state = 'active' AND expires_at > p_now
          AND expires_at <= p_now + make_interval(days => p_expiring_days);
    END IF;
    RETURN json_build_object(
        'available', p_account.available, 'pending', p_account.pending, 'held', p_account.held,
        'debt', p_account.debt, 'expiring', v_expiring
    );
END
$$;
"""


def create_functions(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTIONS_SQL, params=None)


def restore_functions(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        previous = importlib.import_module("points.migrations.0009_ledger_sql_functions")
        schema_editor.execute(previous.FUNCTIONS_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("points", "0009_ledger_sql_functions")]

    operations = [migrations.RunPython(create_functions, restore_functions)]
