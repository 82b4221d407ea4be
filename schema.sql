-- relationd schema: Juju's relation domain, keyed by model so that it can be distributed by model.
--
-- The current schema only. `relationd migrate` (daemon/migrate.py) applies it to an empty database
-- and stamps it at the current version; a database at an earlier version is upgraded by the
-- numbered files in migrations/ instead. A change here needs its migration there, and
-- tests/test_schema.py checks that every earlier version migrated equals this file applied fresh.
-- Every table carries model_uuid and every foreign key includes it, so a row can never point into
-- another model.

CREATE TABLE schema_version (
    version     integer PRIMARY KEY,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- ---- lookup tables ---------------------------------------------------------------------------

CREATE TABLE life (
    id     smallint PRIMARY KEY,
    value  text NOT NULL UNIQUE
);
INSERT INTO life (id, value) VALUES (0, 'alive'), (1, 'dying'), (2, 'dead');

CREATE TABLE relation_status_type (
    id    smallint PRIMARY KEY,
    name  text NOT NULL UNIQUE
);
INSERT INTO relation_status_type (id, name) VALUES
    (0, 'joining'), (1, 'joined'), (2, 'broken'), (3, 'suspending'), (4, 'suspended'), (5, 'error');

CREATE TABLE charm_relation_role (
    id    smallint PRIMARY KEY,
    name  text NOT NULL UNIQUE
);
INSERT INTO charm_relation_role (id, name) VALUES (0, 'provider'), (1, 'requirer'), (2, 'peer');

CREATE TABLE charm_relation_scope (
    id    smallint PRIMARY KEY,
    name  text NOT NULL UNIQUE
);
INSERT INTO charm_relation_scope (id, name) VALUES (0, 'global'), (1, 'container');

-- ---- models ----------------------------------------------------------------------------------

CREATE TABLE model (
    uuid        uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE CHECK (name ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- ---- access ----------------------------------------------------------------------------------

CREATE TABLE access_level (
    id    smallint PRIMARY KEY,
    name  text NOT NULL UNIQUE
);
INSERT INTO access_level (id, name) VALUES (0, 'read'), (1, 'write'), (2, 'admin');

-- Who may do what on a model; the user is the broker user that RabbitMQ vouches for.
CREATE TABLE model_access (
    model_uuid  uuid NOT NULL REFERENCES model (uuid) ON DELETE CASCADE,
    user_name   text NOT NULL CHECK (user_name <> ''),
    level_id    smallint NOT NULL REFERENCES access_level (id),
    granted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_uuid, user_name)
);
CREATE INDEX model_access_user ON model_access (user_name);

-- The next relation id of each model. Ids start at 0 and are never handed out twice.
CREATE TABLE relation_sequence (
    model_uuid  uuid PRIMARY KEY REFERENCES model (uuid) ON DELETE CASCADE,
    value       bigint NOT NULL DEFAULT 0 CHECK (value >= 0)
);

-- The last change-event sequence number of each model (gapless, per model).
CREATE TABLE model_event_sequence (
    model_uuid  uuid PRIMARY KEY REFERENCES model (uuid) ON DELETE CASCADE,
    value       bigint NOT NULL DEFAULT 0 CHECK (value >= 0)
);

CREATE TABLE space (
    model_uuid  uuid NOT NULL REFERENCES model (uuid) ON DELETE CASCADE,
    uuid        uuid NOT NULL,
    name        text NOT NULL,
    PRIMARY KEY (model_uuid, uuid),
    UNIQUE (model_uuid, name)
);

-- ---- charms, applications, units -------------------------------------------------------------

CREATE TABLE charm (
    model_uuid   uuid NOT NULL REFERENCES model (uuid) ON DELETE CASCADE,
    uuid         uuid NOT NULL,
    name         text,
    subordinate  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (model_uuid, uuid)
);

-- A charm's relation definitions (metadata.yaml provides / requires / peers, and juju-info).
CREATE TABLE charm_relation (
    model_uuid  uuid NOT NULL,
    uuid        uuid NOT NULL,
    charm_uuid  uuid NOT NULL,
    name        text NOT NULL CHECK (name <> ''),
    role_id     smallint NOT NULL REFERENCES charm_relation_role (id),
    interface   text NOT NULL CHECK (interface <> ''),
    capacity    integer CHECK (capacity >= 0),   -- metadata's `limit`; NULL = unlimited
    optional    boolean NOT NULL DEFAULT false,
    scope_id    smallint NOT NULL DEFAULT 0 REFERENCES charm_relation_scope (id),
    PRIMARY KEY (model_uuid, uuid),
    UNIQUE (model_uuid, charm_uuid, name),
    FOREIGN KEY (model_uuid, charm_uuid) REFERENCES charm (model_uuid, uuid) ON DELETE CASCADE
);

CREATE TABLE application (
    model_uuid     uuid NOT NULL REFERENCES model (uuid) ON DELETE CASCADE,
    uuid           uuid NOT NULL,
    name           text NOT NULL CHECK (name ~ '^[a-z][a-z0-9]*(-[a-z0-9]*[a-z][a-z0-9]*)*$'),
    charm_uuid     uuid NOT NULL,
    life_id        smallint NOT NULL DEFAULT 0 REFERENCES life (id),
    -- The next unit number; unit numbers are never reused.
    unit_sequence  integer NOT NULL DEFAULT 0 CHECK (unit_sequence >= 0),
    PRIMARY KEY (model_uuid, uuid),
    UNIQUE (model_uuid, name),
    FOREIGN KEY (model_uuid, charm_uuid) REFERENCES charm (model_uuid, uuid)
);

CREATE TABLE unit (
    model_uuid        uuid NOT NULL,
    uuid              uuid NOT NULL,
    application_uuid  uuid NOT NULL,
    name              text NOT NULL,
    number            integer NOT NULL CHECK (number >= 0),
    life_id           smallint NOT NULL DEFAULT 0 REFERENCES life (id),
    principal_uuid    uuid,   -- set for, and only for, a subordinate unit
    PRIMARY KEY (model_uuid, uuid),
    UNIQUE (model_uuid, name),
    UNIQUE (model_uuid, application_uuid, number),
    UNIQUE (model_uuid, application_uuid, uuid),
    CHECK (principal_uuid IS DISTINCT FROM uuid),
    FOREIGN KEY (model_uuid, application_uuid) REFERENCES application (model_uuid, uuid),
    -- A subordinate unit cannot outlive its principal.
    FOREIGN KEY (model_uuid, principal_uuid) REFERENCES unit (model_uuid, uuid)
);
CREATE INDEX unit_principal ON unit (model_uuid, principal_uuid)
    WHERE principal_uuid IS NOT NULL;

-- At most one leader per application, and the leader is one of its units.
CREATE TABLE application_leader (
    model_uuid        uuid NOT NULL,
    application_uuid  uuid NOT NULL,
    unit_uuid         uuid NOT NULL,
    PRIMARY KEY (model_uuid, application_uuid),
    FOREIGN KEY (model_uuid, application_uuid, unit_uuid)
        REFERENCES unit (model_uuid, application_uuid, uuid) ON DELETE CASCADE
);

-- Links an application, one of its charm's relation definitions and a space.
CREATE TABLE application_endpoint (
    model_uuid            uuid NOT NULL,
    uuid                  uuid NOT NULL,
    application_uuid      uuid NOT NULL,
    charm_relation_uuid   uuid NOT NULL,
    space_uuid            uuid,
    PRIMARY KEY (model_uuid, uuid),
    UNIQUE (model_uuid, application_uuid, charm_relation_uuid),
    UNIQUE (model_uuid, application_uuid, uuid),
    FOREIGN KEY (model_uuid, application_uuid) REFERENCES application (model_uuid, uuid)
        ON DELETE CASCADE,
    FOREIGN KEY (model_uuid, charm_relation_uuid) REFERENCES charm_relation (model_uuid, uuid),
    FOREIGN KEY (model_uuid, space_uuid) REFERENCES space (model_uuid, uuid)
);

-- ---- relations -------------------------------------------------------------------------------

CREATE TABLE relation (
    model_uuid   uuid NOT NULL REFERENCES model (uuid) ON DELETE CASCADE,
    uuid         uuid NOT NULL,
    relation_id  bigint NOT NULL CHECK (relation_id >= 0),
    key          text NOT NULL CHECK (key <> ''),
    is_peer      boolean NOT NULL,
    scope_id     smallint NOT NULL DEFAULT 0 REFERENCES charm_relation_scope (id),
    life_id      smallint NOT NULL DEFAULT 0 REFERENCES life (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_uuid, uuid),
    UNIQUE (model_uuid, relation_id),
    UNIQUE (model_uuid, key)
);

-- One row for a peer relation, two for a regular one (checked at commit by a trigger below).
CREATE TABLE relation_endpoint (
    model_uuid        uuid NOT NULL,
    uuid              uuid NOT NULL,
    relation_uuid     uuid NOT NULL,
    endpoint_uuid     uuid NOT NULL,
    application_uuid  uuid NOT NULL,
    position          smallint NOT NULL CHECK (position IN (0, 1)),
    PRIMARY KEY (model_uuid, uuid),
    UNIQUE (model_uuid, relation_uuid, position),
    UNIQUE (model_uuid, relation_uuid, application_uuid),
    UNIQUE (model_uuid, uuid, application_uuid),
    FOREIGN KEY (model_uuid, relation_uuid) REFERENCES relation (model_uuid, uuid)
        ON DELETE CASCADE,
    FOREIGN KEY (model_uuid, application_uuid, endpoint_uuid)
        REFERENCES application_endpoint (model_uuid, application_uuid, uuid)
);
CREATE INDEX relation_endpoint_endpoint ON relation_endpoint (model_uuid, endpoint_uuid);
-- The relations of an application (removal, reaping, relation-ids): without it, a scan of every
-- endpoint of the model.
CREATE INDEX relation_endpoint_application ON relation_endpoint (model_uuid, application_uuid);

CREATE TABLE relation_status (
    model_uuid      uuid NOT NULL,
    relation_uuid   uuid NOT NULL,
    status_type_id  smallint NOT NULL REFERENCES relation_status_type (id),
    message         text NOT NULL DEFAULT '',
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_uuid, relation_uuid),
    FOREIGN KEY (model_uuid, relation_uuid) REFERENCES relation (model_uuid, uuid)
        ON DELETE CASCADE
);

-- A unit in a relation's scope. The unit belongs to the endpoint's application.
CREATE TABLE relation_unit (
    model_uuid              uuid NOT NULL,
    uuid                    uuid NOT NULL,
    relation_endpoint_uuid  uuid NOT NULL,
    application_uuid        uuid NOT NULL,
    unit_uuid               uuid NOT NULL,
    PRIMARY KEY (model_uuid, uuid),
    UNIQUE (model_uuid, relation_endpoint_uuid, unit_uuid),
    FOREIGN KEY (model_uuid, relation_endpoint_uuid, application_uuid)
        REFERENCES relation_endpoint (model_uuid, uuid, application_uuid) ON DELETE CASCADE,
    FOREIGN KEY (model_uuid, application_uuid, unit_uuid)
        REFERENCES unit (model_uuid, application_uuid, uuid)
);
CREATE INDEX relation_unit_unit ON relation_unit (model_uuid, unit_uuid);

-- Reaping (after every leave scope, unit or application removal) looks for what is dying in the
-- model. Nearly every row is alive, so these partial indexes stay small and spare a scan of every
-- relation, unit and application of the model (100,000 of each in the scale benchmark). An index
-- predicate takes a constant only: 1 is dying in table life (tests/test_schema.py checks it).
CREATE INDEX relation_dying ON relation (model_uuid) WHERE life_id = 1;
CREATE INDEX unit_dying ON unit (model_uuid) WHERE life_id = 1;
CREATE INDEX application_dying ON application (model_uuid) WHERE life_id = 1;

CREATE TABLE relation_unit_setting (
    model_uuid          uuid NOT NULL,
    relation_unit_uuid  uuid NOT NULL,
    key                 text NOT NULL CHECK (key <> ''),
    value               text NOT NULL CHECK (value <> ''),
    PRIMARY KEY (model_uuid, relation_unit_uuid, key),
    FOREIGN KEY (model_uuid, relation_unit_uuid) REFERENCES relation_unit (model_uuid, uuid)
        ON DELETE CASCADE
);

CREATE TABLE relation_unit_settings_hash (
    model_uuid          uuid NOT NULL,
    relation_unit_uuid  uuid NOT NULL,
    sha256              text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    PRIMARY KEY (model_uuid, relation_unit_uuid),
    FOREIGN KEY (model_uuid, relation_unit_uuid) REFERENCES relation_unit (model_uuid, uuid)
        ON DELETE CASCADE
);

CREATE TABLE relation_application_setting (
    model_uuid              uuid NOT NULL,
    relation_endpoint_uuid  uuid NOT NULL,
    key                     text NOT NULL CHECK (key <> ''),
    value                   text NOT NULL CHECK (value <> ''),
    PRIMARY KEY (model_uuid, relation_endpoint_uuid, key),
    FOREIGN KEY (model_uuid, relation_endpoint_uuid) REFERENCES relation_endpoint (model_uuid, uuid)
        ON DELETE CASCADE
);

CREATE TABLE relation_application_settings_hash (
    model_uuid              uuid NOT NULL,
    relation_endpoint_uuid  uuid NOT NULL,
    sha256                  text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    PRIMARY KEY (model_uuid, relation_endpoint_uuid),
    FOREIGN KEY (model_uuid, relation_endpoint_uuid) REFERENCES relation_endpoint (model_uuid, uuid)
        ON DELETE CASCADE
);

-- ---- change events (outbox and replay log) and processed commands ----------------------------

-- The replay log: event_id only grows; seq is gapless per model. Rows are never updated.
CREATE TABLE change_event (
    event_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- No foreign key: the log outlives a removed model, so its last events still go out.
    model_uuid    uuid NOT NULL,
    seq           bigint NOT NULL CHECK (seq > 0),
    namespace     text NOT NULL,
    kind          text NOT NULL,
    routing_key   text NOT NULL,
    key           jsonb NOT NULL,
    payload       jsonb NOT NULL DEFAULT '{}',
    command_id    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (model_uuid, seq)
);

-- The outbox: the events not yet confirmed by the broker. A row is inserted with its event and
-- deleted once published, so the relay's queue stays small and marking an event published
-- neither rewrites the event nor touches the log's indexes.
CREATE TABLE outbox (
    event_id  bigint PRIMARY KEY REFERENCES change_event (event_id) ON DELETE CASCADE
);

-- One row per applied command id: dedupe and the stored reply for redeliveries.
CREATE TABLE processed_command (
    command_id    text PRIMARY KEY CHECK (command_id <> ''),
    command_type  text NOT NULL,
    body_sha256   text NOT NULL,
    reply         jsonb,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    -- The broker user who sent the command (NULL: the system, or a row stored before version 4),
    -- so that a duplicate command id is answered from the store only to its sender or to a user
    -- with the access the command needed (daemon/applier.py).
    sender        text
);
CREATE INDEX processed_command_age ON processed_command (processed_at);

-- ---- views: the joins many queries share ------------------------------------------------------

CREATE VIEW v_application_endpoint AS
SELECT ae.model_uuid,
       ae.uuid            AS endpoint_uuid,
       ae.application_uuid,
       a.name             AS application_name,
       a.life_id          AS application_life_id,
       c.subordinate,
       cr.name            AS endpoint_name,
       crr.name           AS role,
       cr.interface,
       crs.name           AS scope,
       cr.capacity,
       cr.optional
FROM application_endpoint ae
JOIN application a           ON a.model_uuid = ae.model_uuid AND a.uuid = ae.application_uuid
JOIN charm c                 ON c.model_uuid = a.model_uuid AND c.uuid = a.charm_uuid
JOIN charm_relation cr       ON cr.model_uuid = ae.model_uuid AND cr.uuid = ae.charm_relation_uuid
JOIN charm_relation_role crr ON crr.id = cr.role_id
JOIN charm_relation_scope crs ON crs.id = cr.scope_id;

CREATE VIEW v_relation_endpoint AS
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

-- ---- invariants checked at commit ------------------------------------------------------------

-- A relation has exactly one endpoint if it is a peer relation and two otherwise.
CREATE FUNCTION relation_endpoint_count_check() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    m uuid;
    r uuid;
    peer boolean;
    n integer;
    expected integer;
BEGIN
    IF TG_TABLE_NAME = 'relation' THEN
        m := NEW.model_uuid; r := NEW.uuid;
    ELSIF TG_OP = 'DELETE' THEN
        m := OLD.model_uuid; r := OLD.relation_uuid;
    ELSE
        m := NEW.model_uuid; r := NEW.relation_uuid;
    END IF;
    SELECT is_peer INTO peer FROM relation WHERE model_uuid = m AND uuid = r;
    IF NOT FOUND THEN
        RETURN NULL;  -- the relation was removed; its endpoints went with it
    END IF;
    SELECT count(*) INTO n FROM relation_endpoint WHERE model_uuid = m AND relation_uuid = r;
    expected := CASE WHEN peer THEN 1 ELSE 2 END;
    IF n <> expected THEN
        RAISE EXCEPTION 'relation % has % endpoint(s) but needs %', r, n, expected
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER relation_endpoint_count
    AFTER INSERT OR UPDATE OR DELETE ON relation_endpoint
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION relation_endpoint_count_check();

CREATE CONSTRAINT TRIGGER relation_endpoint_count
    AFTER INSERT ON relation
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION relation_endpoint_count_check();

-- An endpoint takes part in at most `limit` relations that are not dead.
CREATE FUNCTION relation_endpoint_limit_check() RETURNS trigger
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

CREATE CONSTRAINT TRIGGER relation_endpoint_limit
    AFTER INSERT OR UPDATE OF endpoint_uuid ON relation_endpoint
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION relation_endpoint_limit_check();

-- No unit may be in the scope of a dead relation.
CREATE FUNCTION relation_dead_scope_check() RETURNS trigger
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

CREATE TRIGGER relation_dead_scope
    BEFORE UPDATE OF life_id ON relation
    FOR EACH ROW EXECUTE FUNCTION relation_dead_scope_check();

-- ... nor enter the scope of a relation that is already dead.
CREATE FUNCTION relation_unit_dead_relation_check() RETURNS trigger
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

CREATE TRIGGER relation_unit_dead_relation
    BEFORE INSERT OR UPDATE OF relation_endpoint_uuid ON relation_unit
    FOR EACH ROW EXECUTE FUNCTION relation_unit_dead_relation_check();

-- Life only moves forward: alive -> dying -> dead.
CREATE FUNCTION life_forward_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.life_id < OLD.life_id THEN
        RAISE EXCEPTION '% life cannot go back from % to %', TG_TABLE_NAME, OLD.life_id, NEW.life_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER relation_life_forward BEFORE UPDATE OF life_id ON relation
    FOR EACH ROW EXECUTE FUNCTION life_forward_check();
CREATE TRIGGER application_life_forward BEFORE UPDATE OF life_id ON application
    FOR EACH ROW EXECUTE FUNCTION life_forward_check();
CREATE TRIGGER unit_life_forward BEFORE UPDATE OF life_id ON unit
    FOR EACH ROW EXECUTE FUNCTION life_forward_check();

-- A unit has a principal unit if and only if its application is subordinate, and that principal
-- is not itself a subordinate unit. Checked at commit, on the rows as they are then, so that a
-- transaction may unlink principals before deleting their units.
CREATE FUNCTION unit_principal_check() RETURNS trigger
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

CREATE CONSTRAINT TRIGGER unit_principal
    AFTER INSERT OR UPDATE OF application_uuid, principal_uuid ON unit
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION unit_principal_check();

-- Relation ids only grow.
CREATE FUNCTION sequence_forward_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.value < OLD.value THEN
        RAISE EXCEPTION '% cannot go back from % to %', TG_TABLE_NAME, OLD.value, NEW.value
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER relation_sequence_forward BEFORE UPDATE ON relation_sequence
    FOR EACH ROW EXECUTE FUNCTION sequence_forward_check();
CREATE TRIGGER model_event_sequence_forward BEFORE UPDATE ON model_event_sequence
    FOR EACH ROW EXECUTE FUNCTION sequence_forward_check();


-- ---- departed units' settings ----------------------------------------------------------------

-- A departed unit's settings stay readable, as in Juju (4.x keeps them in
-- relation_unit_setting_archive on leave scope). Leave scope moves the unit's bag here; the units
-- still in the relation read it (a relation-departed hook does) until the relation is removed,
-- which drops it with the relation's endpoints; entering scope again deletes it. Keyed by the
-- unit's name, with no foreign key to the unit, so that it outlives the unit's removal as Juju's
-- does (unit names are never reused within a relation's life). container_uuid is the unit's
-- container (its principal unit, or itself) for per-container reads.
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
