-- Version 4: processed_command.sender, the broker user who sent the command (NULL: the system,
-- or a row stored before version 4), so that a duplicate command id is answered from the store
-- only to its sender or to a user with the access the command needed (daemon/applier.py).
ALTER TABLE processed_command ADD COLUMN sender text;

-- A relation endpoint's scope is the relation's, not the charm's: both endpoints of a
-- container-scoped relation are container-scoped (Juju's relation-endpoint view).
CREATE OR REPLACE VIEW v_relation_endpoint AS
SELECT re.model_uuid,
       re.uuid            AS relation_endpoint_uuid,
       re.relation_uuid,
       r.relation_id,
       re.position,
       v.endpoint_uuid,
       v.application_uuid,
       v.application_name,
       v.subordinate,
       v.endpoint_name,
       v.role,
       v.interface,
       -- The relation's scope, not the charm's: both endpoints of a container-scoped relation are
       -- container-scoped (Juju's relation-endpoint view; version 4). v_application_endpoint
       -- keeps the declared one.
       rs.name            AS scope,
       v.capacity,
       v.optional
FROM relation_endpoint re
JOIN relation r                ON r.model_uuid = re.model_uuid AND r.uuid = re.relation_uuid
JOIN charm_relation_scope rs   ON rs.id = r.scope_id
JOIN v_application_endpoint v  ON v.model_uuid = re.model_uuid AND v.endpoint_uuid = re.endpoint_uuid;

-- A departed unit's settings stay readable, as in Juju (see schema.sql).
CREATE TABLE relation_unit_archive (
    model_uuid              uuid NOT NULL,
    relation_endpoint_uuid  uuid NOT NULL,
    unit_name               text NOT NULL CHECK (unit_name <> ''),
    container_uuid          uuid NOT NULL,
    departed_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_uuid, relation_endpoint_uuid, unit_name),
    FOREIGN KEY (model_uuid, relation_endpoint_uuid) REFERENCES relation_endpoint (model_uuid, uuid)
        ON DELETE CASCADE
);

CREATE TABLE relation_unit_setting_archive (
    model_uuid              uuid NOT NULL,
    relation_endpoint_uuid  uuid NOT NULL,
    unit_name               text NOT NULL,
    key                     text NOT NULL CHECK (key <> ''),
    value                   text NOT NULL CHECK (value <> ''),
    PRIMARY KEY (model_uuid, relation_endpoint_uuid, unit_name, key),
    FOREIGN KEY (model_uuid, relation_endpoint_uuid, unit_name)
        REFERENCES relation_unit_archive (model_uuid, relation_endpoint_uuid, unit_name)
        ON DELETE CASCADE
);

-- A unit is in a relation endpoint's scope or archived there, never both, and only a unit of the
-- endpoint's application is archived there. Checked at commit, on the rows as they are then.
CREATE FUNCTION relation_unit_archive_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    archived_unit text;
    endpoint_app text;
BEGIN
    IF TG_TABLE_NAME = 'relation_unit' THEN
        SELECT u.name INTO archived_unit FROM relation_unit ru
        JOIN unit u ON u.model_uuid = ru.model_uuid AND u.uuid = ru.unit_uuid
        WHERE ru.model_uuid = NEW.model_uuid AND ru.uuid = NEW.uuid;
    ELSE
        SELECT a.unit_name INTO archived_unit FROM relation_unit_archive a
        WHERE a.model_uuid = NEW.model_uuid AND a.relation_endpoint_uuid = NEW.relation_endpoint_uuid
          AND a.unit_name = NEW.unit_name;
    END IF;
    IF archived_unit IS NULL THEN
        RETURN NULL;  -- gone again before commit
    END IF;
    IF EXISTS (
        SELECT 1 FROM relation_unit_archive a
        JOIN relation_unit ru ON ru.model_uuid = a.model_uuid
             AND ru.relation_endpoint_uuid = a.relation_endpoint_uuid
        JOIN unit u ON u.model_uuid = ru.model_uuid AND u.uuid = ru.unit_uuid AND u.name = a.unit_name
        WHERE a.model_uuid = NEW.model_uuid AND a.relation_endpoint_uuid = NEW.relation_endpoint_uuid
          AND a.unit_name = archived_unit
    ) THEN
        RAISE EXCEPTION 'unit % is both in scope and archived on relation endpoint %',
            archived_unit, NEW.relation_endpoint_uuid USING ERRCODE = 'check_violation';
    END IF;
    IF TG_TABLE_NAME = 'relation_unit_archive' THEN
        SELECT a.name INTO endpoint_app FROM relation_endpoint re
        JOIN application a ON a.model_uuid = re.model_uuid AND a.uuid = re.application_uuid
        WHERE re.model_uuid = NEW.model_uuid AND re.uuid = NEW.relation_endpoint_uuid;
        IF endpoint_app IS DISTINCT FROM split_part(archived_unit, '/', 1) THEN
            RAISE EXCEPTION 'unit % cannot be archived on an endpoint of application %',
                archived_unit, endpoint_app USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER relation_unit_archive_exclusive
    AFTER INSERT OR UPDATE ON relation_unit
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION relation_unit_archive_check();
CREATE CONSTRAINT TRIGGER relation_unit_archive_exclusive
    AFTER INSERT OR UPDATE ON relation_unit_archive
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION relation_unit_archive_check();

-- The checks on dead relations name the value instead of its id.
CREATE OR REPLACE FUNCTION relation_endpoint_limit_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    cap integer;
    n integer;
BEGIN
    SELECT cr.capacity INTO cap
    FROM application_endpoint ae
    JOIN charm_relation cr ON cr.model_uuid = ae.model_uuid AND cr.uuid = ae.charm_relation_uuid
    WHERE ae.model_uuid = NEW.model_uuid AND ae.uuid = NEW.endpoint_uuid;
    IF cap IS NULL THEN
        RETURN NULL;
    END IF;
    SELECT count(*) INTO n
    FROM relation_endpoint re
    JOIN relation r ON r.model_uuid = re.model_uuid AND r.uuid = re.relation_uuid
    WHERE re.model_uuid = NEW.model_uuid AND re.endpoint_uuid = NEW.endpoint_uuid
      AND r.life_id <> (SELECT id FROM life WHERE value = 'dead') AND NOT r.is_peer;
    IF n > cap THEN
        RAISE EXCEPTION 'endpoint % is in % relations; its limit is %', NEW.endpoint_uuid, n, cap
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION relation_dead_scope_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.life_id = (SELECT id FROM life WHERE value = 'dead') AND EXISTS (
        SELECT 1 FROM relation_unit ru
        JOIN relation_endpoint re ON re.model_uuid = ru.model_uuid AND re.uuid = ru.relation_endpoint_uuid
        WHERE re.model_uuid = NEW.model_uuid AND re.relation_uuid = NEW.uuid
    ) THEN
        RAISE EXCEPTION 'relation % cannot be dead while units are in its scope', NEW.relation_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION relation_unit_dead_relation_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    rid bigint;
BEGIN
    SELECT r.relation_id INTO rid
    FROM relation_endpoint re
    JOIN relation r ON r.model_uuid = re.model_uuid AND r.uuid = re.relation_uuid
    WHERE re.model_uuid = NEW.model_uuid AND re.uuid = NEW.relation_endpoint_uuid
      AND r.life_id = (SELECT id FROM life WHERE value = 'dead');
    IF FOUND THEN
        RAISE EXCEPTION 'relation % is dead; no unit may enter its scope', rid
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;
