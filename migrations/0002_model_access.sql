-- Version 2: access per model for the users the broker vouches for, and a change log that outlives
-- its model (no foreign key from change_event to model).

CREATE TABLE access_level (
    id    smallint PRIMARY KEY,
    name  text NOT NULL UNIQUE
);
INSERT INTO access_level (id, name) VALUES (0, 'read'), (1, 'write'), (2, 'admin');

CREATE TABLE model_access (
    model_uuid  uuid NOT NULL REFERENCES model (uuid) ON DELETE CASCADE,
    user_name   text NOT NULL CHECK (user_name <> ''),
    level_id    smallint NOT NULL REFERENCES access_level (id),
    granted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_uuid, user_name)
);
CREATE INDEX model_access_user ON model_access (user_name);

ALTER TABLE change_event DROP CONSTRAINT IF EXISTS change_event_model_uuid_fkey;
