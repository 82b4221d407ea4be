-- Version 3: the outbox is a table of its own; version 2 marked it with change_event.published_at.
--
-- First, what version 2 gained after it was first released (applying schema.sql on every start
-- brought it to the databases already at 2): a database stamped 2 before then lacks it, so it is
-- added here if missing.

CREATE INDEX IF NOT EXISTS relation_endpoint_application ON relation_endpoint (model_uuid, application_uuid);
CREATE INDEX IF NOT EXISTS relation_dying ON relation (model_uuid) WHERE life_id = 1;
CREATE INDEX IF NOT EXISTS unit_dying ON unit (model_uuid) WHERE life_id = 1;
CREATE INDEX IF NOT EXISTS application_dying ON application (model_uuid) WHERE life_id = 1;

-- Endpoint limits are checked when a relation endpoint is moved too.
DROP TRIGGER IF EXISTS relation_endpoint_limit ON relation_endpoint;
CREATE CONSTRAINT TRIGGER relation_endpoint_limit
    AFTER INSERT OR UPDATE OF endpoint_uuid ON relation_endpoint
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION relation_endpoint_limit_check();

-- ... nor enter the scope of a relation that is already dead.
CREATE OR REPLACE FUNCTION relation_unit_dead_relation_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    rid bigint;
BEGIN
    SELECT r.relation_id INTO rid
    FROM relation_endpoint re
    JOIN relation r ON r.model_uuid = re.model_uuid AND r.uuid = re.relation_uuid
    WHERE re.model_uuid = NEW.model_uuid AND re.uuid = NEW.relation_endpoint_uuid AND r.life_id = 2;
    IF FOUND THEN
        RAISE EXCEPTION 'relation % is dead; no unit may enter its scope', rid
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

DROP TRIGGER IF EXISTS relation_unit_dead_relation ON relation_unit;
CREATE TRIGGER relation_unit_dead_relation
    BEFORE INSERT OR UPDATE OF relation_endpoint_uuid ON relation_unit
    FOR EACH ROW EXECUTE FUNCTION relation_unit_dead_relation_check();

-- A unit has a principal unit if and only if its application is subordinate, and that principal
-- is not itself a subordinate unit. Checked at commit, on the rows as they are then, so that a
-- transaction may unlink principals before deleting their units.
CREATE OR REPLACE FUNCTION unit_principal_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    u record;
BEGIN
    SELECT un.name, un.principal_uuid, c.subordinate,
           EXISTS (SELECT 1 FROM unit p WHERE p.model_uuid = un.model_uuid
                   AND p.uuid = un.principal_uuid AND p.principal_uuid IS NOT NULL) AS principal_is_sub
    INTO u
    FROM unit un
    JOIN application a ON a.model_uuid = un.model_uuid AND a.uuid = un.application_uuid
    JOIN charm c ON c.model_uuid = a.model_uuid AND c.uuid = a.charm_uuid
    WHERE un.model_uuid = NEW.model_uuid AND un.uuid = NEW.uuid;
    IF NOT FOUND THEN
        RETURN NULL;  -- the unit was removed in the same transaction
    END IF;
    IF u.subordinate AND u.principal_uuid IS NULL THEN
        RAISE EXCEPTION 'subordinate unit % needs a principal unit', u.name
            USING ERRCODE = 'check_violation';
    END IF;
    IF NOT u.subordinate AND u.principal_uuid IS NOT NULL THEN
        RAISE EXCEPTION 'unit % of a principal application cannot have a principal unit', u.name
            USING ERRCODE = 'check_violation';
    END IF;
    IF u.principal_is_sub THEN
        RAISE EXCEPTION 'the principal of unit % is itself a subordinate unit', u.name
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS unit_principal ON unit;
CREATE CONSTRAINT TRIGGER unit_principal
    AFTER INSERT OR UPDATE OF application_uuid, principal_uuid ON unit
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION unit_principal_check();

-- The outbox: the events not yet confirmed by the broker; the pending events of version 2 move in.
CREATE TABLE outbox (
    event_id  bigint PRIMARY KEY REFERENCES change_event (event_id) ON DELETE CASCADE
);
INSERT INTO outbox (event_id) SELECT event_id FROM change_event WHERE published_at IS NULL;
ALTER TABLE change_event DROP COLUMN published_at;  -- and its partial index with it
