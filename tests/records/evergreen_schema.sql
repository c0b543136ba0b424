-- Evergreen's tables that examples/evergreen/views.sql reads, for the test suite: our own DDL,
-- written from the column lists of Evergreen's published definitions
-- (evergreen-library-system/Evergreen, Open-ILS/src/sql/Pg/): 005.schema.actors.sql at
-- 43999e0c9c6c6334e6c5e7b70a9c4c43327a5844, 040.schema.asset.sql at
-- a6170ad241d22e936def92dd0896ee955ae48e53, 080.schema.money.sql (money.billable_xact),
-- 090.schema.action.sql (the version with action.usr_circ_history and
-- action.aged_hold_request; 12a3ad7bc20774ff5aaa99bf73930a085d8143f6 predates both) and the
-- reporter schema's materialized_simple_record. Column names, types and NOT NULLs follow
-- those files; foreign keys to tables not built here (config.*, permission.*, workstations)
-- and Evergreen's triggers are left out. Every timestamp is TIMESTAMP WITH TIME ZONE, as in
-- Evergreen.
CREATE SCHEMA actor;
CREATE SCHEMA asset;
CREATE SCHEMA money;
CREATE SCHEMA action;
CREATE SCHEMA config;
CREATE SCHEMA reporter;

CREATE TABLE actor.org_unit (
    id SERIAL PRIMARY KEY,
    parent_ou INT,
    ou_type INT NOT NULL,
    ill_address INT,
    holds_address INT,
    mailing_address INT,
    billing_address INT,
    shortname TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    email TEXT,
    phone TEXT,
    opac_visible BOOL NOT NULL DEFAULT TRUE,
    fiscal_calendar INT NOT NULL DEFAULT 1
);

CREATE TABLE actor.usr (
    id SERIAL PRIMARY KEY,
    card INT UNIQUE,
    profile INT NOT NULL,
    usrname TEXT NOT NULL UNIQUE,
    email TEXT,
    passwd TEXT NOT NULL,
    standing INT NOT NULL DEFAULT 1,
    ident_type INT NOT NULL,
    ident_value TEXT,
    ident_type2 INT,
    ident_value2 TEXT,
    net_access_level INT NOT NULL DEFAULT 1,
    photo_url TEXT,
    prefix TEXT,
    first_given_name TEXT NOT NULL,
    second_given_name TEXT,
    family_name TEXT NOT NULL,
    suffix TEXT,
    alias TEXT,
    day_phone TEXT,
    evening_phone TEXT,
    other_phone TEXT,
    mailing_address INT,
    billing_address INT,
    home_ou INT NOT NULL,
    dob TIMESTAMP WITH TIME ZONE,
    active BOOL NOT NULL DEFAULT TRUE,
    master_account BOOL NOT NULL DEFAULT FALSE,
    super_user BOOL NOT NULL DEFAULT FALSE,
    barred BOOL NOT NULL DEFAULT FALSE,
    deleted BOOL NOT NULL DEFAULT FALSE,
    juvenile BOOL NOT NULL DEFAULT FALSE,
    usrgroup SERIAL NOT NULL,
    claims_returned_count INT NOT NULL DEFAULT 0,
    credit_forward_balance NUMERIC(6,2) NOT NULL DEFAULT 0.00,
    last_xact_id TEXT NOT NULL DEFAULT 'none',
    alert_message TEXT,
    create_date TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
    expire_date TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT (now() + '3 years'::INTERVAL),
    claims_never_checked_out_count INT NOT NULL DEFAULT 0,
    last_update_time TIMESTAMP WITH TIME ZONE
);

CREATE TABLE actor.usr_note (
    id BIGSERIAL PRIMARY KEY,
    usr BIGINT NOT NULL REFERENCES actor.usr ON DELETE CASCADE,
    creator BIGINT NOT NULL REFERENCES actor.usr ON DELETE CASCADE,
    create_date TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    pub BOOL NOT NULL DEFAULT FALSE,
    title TEXT NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE actor.card (
    id SERIAL PRIMARY KEY,
    usr INT NOT NULL REFERENCES actor.usr (id),
    barcode TEXT NOT NULL UNIQUE,
    active BOOL NOT NULL DEFAULT TRUE
);
CREATE INDEX actor_card_usr_idx ON actor.card (usr);

CREATE TABLE actor.usr_address (
    id SERIAL PRIMARY KEY,
    valid BOOL NOT NULL DEFAULT TRUE,
    within_city_limits BOOL NOT NULL DEFAULT TRUE,
    address_type TEXT NOT NULL DEFAULT 'MAILING',
    usr INT NOT NULL REFERENCES actor.usr (id),
    street1 TEXT NOT NULL,
    street2 TEXT,
    city TEXT NOT NULL,
    county TEXT,
    state TEXT,
    country TEXT NOT NULL,
    post_code TEXT NOT NULL,
    pending BOOL NOT NULL DEFAULT FALSE,
    replaces INT REFERENCES actor.usr_address (id)
);

CREATE TABLE asset.call_number (
    id BIGSERIAL PRIMARY KEY,
    creator BIGINT NOT NULL,
    create_date TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    editor BIGINT NOT NULL,
    edit_date TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    record BIGINT NOT NULL,
    owning_lib INT NOT NULL,
    label TEXT NOT NULL,
    deleted BOOL NOT NULL DEFAULT FALSE,
    prefix INT NOT NULL DEFAULT -1,
    suffix INT NOT NULL DEFAULT -1,
    label_class BIGINT,
    label_sortkey TEXT
);

CREATE TABLE asset.copy (
    id BIGSERIAL PRIMARY KEY,
    circ_lib INT NOT NULL,
    creator BIGINT NOT NULL,
    call_number BIGINT NOT NULL,
    editor BIGINT NOT NULL,
    create_date TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    edit_date TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    copy_number INT,
    status INT NOT NULL DEFAULT 0,
    location INT NOT NULL DEFAULT 1,
    loan_duration INT NOT NULL CHECK (loan_duration IN (1,2,3)),
    fine_level INT NOT NULL CHECK (fine_level IN (1,2,3)),
    age_protect INT,
    circulate BOOL NOT NULL DEFAULT TRUE,
    deposit BOOL NOT NULL DEFAULT FALSE,
    ref BOOL NOT NULL DEFAULT FALSE,
    holdable BOOL NOT NULL DEFAULT TRUE,
    deposit_amount NUMERIC(6,2) NOT NULL DEFAULT 0.00,
    price NUMERIC(8,2),
    barcode TEXT NOT NULL,
    circ_modifier TEXT,
    circ_as_type TEXT,
    dummy_title TEXT,
    dummy_author TEXT,
    alert_message TEXT,
    opac_visible BOOL NOT NULL DEFAULT TRUE,
    deleted BOOL NOT NULL DEFAULT FALSE,
    floating BOOL NOT NULL DEFAULT FALSE,
    dummy_isbn TEXT,
    status_changed_time TIMESTAMP WITH TIME ZONE,
    active_date TIMESTAMP WITH TIME ZONE,
    mint_condition BOOL NOT NULL DEFAULT TRUE,
    cost NUMERIC(8,2)
);

CREATE TABLE reporter.materialized_simple_record (
    id BIGINT PRIMARY KEY,
    fingerprint TEXT,
    quality INT,
    tcn_source TEXT,
    tcn_value TEXT,
    title TEXT,
    author TEXT,
    publisher TEXT,
    pubdate TEXT,
    isbn TEXT[],
    issn TEXT[]
);

CREATE TABLE money.billable_xact (
    id BIGSERIAL PRIMARY KEY,
    usr INT NOT NULL,
    xact_start TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    xact_finish TIMESTAMP WITH TIME ZONE,
    unrecovered BOOL
);

CREATE TABLE action.circulation (
    target_copy BIGINT NOT NULL,
    circ_lib INT NOT NULL,
    circ_staff INT NOT NULL,
    checkin_staff INT,
    checkin_lib INT,
    renewal_remaining INT NOT NULL,
    grace_period INTERVAL NOT NULL,
    due_date TIMESTAMP WITH TIME ZONE,
    stop_fines_time TIMESTAMP WITH TIME ZONE,
    checkin_time TIMESTAMP WITH TIME ZONE,
    create_time TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    duration INTERVAL,
    fine_interval INTERVAL NOT NULL DEFAULT '1 day'::INTERVAL,
    recurring_fine NUMERIC(6,2),
    max_fine NUMERIC(6,2),
    phone_renewal BOOL NOT NULL DEFAULT FALSE,
    desk_renewal BOOL NOT NULL DEFAULT FALSE,
    opac_renewal BOOL NOT NULL DEFAULT FALSE,
    duration_rule TEXT NOT NULL,
    recurring_fine_rule TEXT NOT NULL,
    max_fine_rule TEXT NOT NULL,
    stop_fines TEXT CHECK (stop_fines IN (
        'CHECKIN','CLAIMSRETURNED','LOST','MAXFINES','RENEW','LONGOVERDUE','CLAIMSNEVERCHECKEDOUT')),
    workstation INT,
    checkin_workstation INT,
    copy_location INT NOT NULL DEFAULT 1,
    checkin_scan_time TIMESTAMP WITH TIME ZONE,
    auto_renewal BOOLEAN NOT NULL DEFAULT FALSE,
    auto_renewal_remaining INTEGER
) INHERITS (money.billable_xact);
ALTER TABLE action.circulation ADD PRIMARY KEY (id);
ALTER TABLE action.circulation ADD COLUMN parent_circ BIGINT REFERENCES action.circulation (id);
CREATE INDEX circ_all_usr_idx ON action.circulation (usr);

CREATE TABLE action.aged_circulation (
    usr_post_code TEXT,
    usr_home_ou INT NOT NULL,
    usr_profile INT NOT NULL,
    usr_birth_year INT,
    copy_call_number INT NOT NULL,
    copy_owning_lib INT NOT NULL,
    copy_circ_lib INT NOT NULL,
    copy_bib_record BIGINT NOT NULL,
    LIKE action.circulation
);
ALTER TABLE action.aged_circulation ADD PRIMARY KEY (id);
ALTER TABLE action.aged_circulation DROP COLUMN usr;

CREATE TABLE action.usr_circ_history (
    id BIGSERIAL PRIMARY KEY,
    usr INTEGER NOT NULL REFERENCES actor.usr (id),
    xact_start TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    target_copy BIGINT NOT NULL,
    due_date TIMESTAMP WITH TIME ZONE NOT NULL,
    checkin_time TIMESTAMP WITH TIME ZONE,
    source_circ BIGINT REFERENCES action.circulation (id) ON DELETE SET NULL
);
CREATE INDEX action_usr_circ_history_usr_idx ON action.usr_circ_history (usr);

CREATE TABLE config.non_cataloged_type (
    id SERIAL PRIMARY KEY,
    owning_lib INT NOT NULL,
    name TEXT NOT NULL,
    circ_duration INTERVAL NOT NULL DEFAULT '14 days'::INTERVAL,
    in_house BOOL NOT NULL DEFAULT FALSE
);

CREATE TABLE action.non_cataloged_circulation (
    id SERIAL PRIMARY KEY,
    patron INT NOT NULL REFERENCES actor.usr (id),
    staff INT NOT NULL REFERENCES actor.usr (id),
    circ_lib INT NOT NULL REFERENCES actor.org_unit (id),
    item_type INT NOT NULL REFERENCES config.non_cataloged_type (id),
    circ_time TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);

CREATE TABLE action.in_house_use (
    id SERIAL PRIMARY KEY,
    item BIGINT NOT NULL,
    staff INT NOT NULL REFERENCES actor.usr (id),
    workstation INT,
    org_unit INT NOT NULL REFERENCES actor.org_unit (id),
    use_time TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW()
);

CREATE TABLE action.hold_request (
    id SERIAL PRIMARY KEY,
    request_time TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    capture_time TIMESTAMP WITH TIME ZONE,
    fulfillment_time TIMESTAMP WITH TIME ZONE,
    checkin_time TIMESTAMP WITH TIME ZONE,
    return_time TIMESTAMP WITH TIME ZONE,
    prev_check_time TIMESTAMP WITH TIME ZONE,
    expire_time TIMESTAMP WITH TIME ZONE,
    cancel_time TIMESTAMP WITH TIME ZONE,
    cancel_cause INT,
    cancel_note TEXT,
    canceled_by INT REFERENCES actor.usr (id),
    canceling_ws INT,
    target BIGINT NOT NULL,
    current_copy BIGINT,
    fulfillment_staff INT REFERENCES actor.usr (id),
    fulfillment_lib INT REFERENCES actor.org_unit (id),
    request_lib INT NOT NULL REFERENCES actor.org_unit (id),
    requestor INT NOT NULL REFERENCES actor.usr (id),
    usr INT NOT NULL REFERENCES actor.usr (id),
    selection_ou INT NOT NULL REFERENCES actor.org_unit (id),
    selection_depth INT NOT NULL DEFAULT 0,
    pickup_lib INT NOT NULL REFERENCES actor.org_unit,
    hold_type TEXT,
    holdable_formats TEXT,
    phone_notify TEXT,
    email_notify BOOL NOT NULL DEFAULT FALSE,
    sms_notify TEXT,
    sms_carrier INT,
    frozen BOOL NOT NULL DEFAULT FALSE,
    thaw_date TIMESTAMP WITH TIME ZONE,
    shelf_time TIMESTAMP WITH TIME ZONE,
    cut_in_line BOOL,
    mint_condition BOOL NOT NULL DEFAULT TRUE,
    shelf_expire_time TIMESTAMPTZ,
    current_shelf_lib INT REFERENCES actor.org_unit,
    behind_desk BOOLEAN NOT NULL DEFAULT FALSE,
    hopeless_date TIMESTAMP WITH TIME ZONE
);
CREATE INDEX hold_request_usr_idx ON action.hold_request (usr);

CREATE TABLE action.aged_hold_request (
    usr_post_code TEXT,
    usr_home_ou INT NOT NULL,
    usr_profile INT NOT NULL,
    usr_birth_year INT,
    staff_placed BOOLEAN NOT NULL,
    LIKE action.hold_request
);
ALTER TABLE action.aged_hold_request
    ADD PRIMARY KEY (id),
    DROP COLUMN usr,
    DROP COLUMN requestor,
    DROP COLUMN sms_carrier,
    ALTER COLUMN phone_notify TYPE BOOLEAN
        USING CASE WHEN phone_notify IS NULL OR phone_notify = '' THEN FALSE ELSE TRUE END,
    ALTER COLUMN sms_notify TYPE BOOLEAN
        USING CASE WHEN sms_notify IS NULL OR sms_notify = '' THEN FALSE ELSE TRUE END,
    ALTER COLUMN phone_notify SET NOT NULL,
    ALTER COLUMN sms_notify SET NOT NULL;
