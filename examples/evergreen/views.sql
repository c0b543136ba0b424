-- Bulwark's views over an Evergreen ILS database (PostgreSQL). Run as the database owner
-- (the `evergreen` role of a standard install): `psql -d evergreen -f views.sql`.
-- README.md explains each view, the card-history rule and what Evergreen's aging removes.
--
-- The views live in their own schema, `bulwark`, and hold only columns that may ever be
-- disclosed: no password (actor.usr.passwd), no identification values (ident_value,
-- ident_value2), no alert messages (actor.usr.alert_message, asset.copy.alert_message), no
-- notes (actor.usr_note, action.hold_request.cancel_note, hold notes), no staff or
-- workstation ids. Every patron row is reached through actor.card, so an order names a
-- patron by a library card barcode, the current card or a replaced one (README.md).
-- Written from Evergreen's published definitions (Open-ILS/src/sql/Pg/); README.md names
-- the commits.

CREATE SCHEMA IF NOT EXISTS bulwark;

-- registration: one row per card (a patron with a replaced card has two rows, one per
-- barcode; an order names one barcode, so it reads one row). Periods treat registration as a
-- state: created on or before the period's last day and not expired before its first.
CREATE OR REPLACE VIEW bulwark.registration AS
SELECT c.barcode AS card_barcode,
       c.id AS card_id,
       c.active AS card_active,
       cur.barcode AS current_card_barcode,
       u.prefix,
       u.first_given_name,
       u.second_given_name,
       u.family_name,
       u.suffix,
       u.email,
       u.day_phone,
       u.evening_phone,
       u.other_phone,
       u.dob,
       a.street1,
       a.street2,
       a.city,
       a.state,
       a.post_code,
       a.country,
       home.shortname AS home_library,
       u.active,
       u.deleted,
       u.create_date,
       u.expire_date
  FROM actor.card c
  JOIN actor.usr u ON u.id = c.usr
  LEFT JOIN actor.card cur ON cur.id = u.card
  LEFT JOIN actor.usr_address a ON a.id = u.mailing_address
  LEFT JOIN actor.org_unit home ON home.id = u.home_ou;

-- circulation: checkouts and renewals still in action.circulation; loans kept only in the
-- patron's opt-in reading history (action.usr_circ_history rows whose circulation Evergreen
-- has aged: source_circ is then NULL, so no loan is listed twice); non-cataloged checkouts.
-- row_key keeps the three apart (id * 4 + 0, 1, 2) for paging.
CREATE OR REPLACE VIEW bulwark.circulation AS
SELECT c.barcode AS card_barcode,
       circ.id * 4 AS row_key,
       'circulation'::TEXT AS source,
       circ.xact_start AS checkout_time,
       circ.due_date,
       circ.checkin_time,
       circ.parent_circ IS NOT NULL AS renewal,
       COALESCE(rec.title, cp.dummy_title) AS title,
       COALESCE(rec.author, cp.dummy_author) AS author,
       cp.barcode AS item_barcode,
       lib.shortname AS library
  FROM action.circulation circ
  JOIN actor.card c ON c.usr = circ.usr
  LEFT JOIN asset.copy cp ON cp.id = circ.target_copy
  LEFT JOIN asset.call_number cn ON cn.id = cp.call_number
  LEFT JOIN reporter.materialized_simple_record rec ON rec.id = cn.record
  LEFT JOIN actor.org_unit lib ON lib.id = circ.circ_lib
UNION ALL
SELECT c.barcode,
       h.id * 4 + 1,
       'reading_history'::TEXT,
       h.xact_start,
       h.due_date,
       h.checkin_time,
       FALSE,
       COALESCE(rec.title, cp.dummy_title),
       COALESCE(rec.author, cp.dummy_author),
       cp.barcode,
       NULL::TEXT
  FROM action.usr_circ_history h
  JOIN actor.card c ON c.usr = h.usr
  LEFT JOIN asset.copy cp ON cp.id = h.target_copy
  LEFT JOIN asset.call_number cn ON cn.id = cp.call_number
  LEFT JOIN reporter.materialized_simple_record rec ON rec.id = cn.record
 WHERE h.source_circ IS NULL
UNION ALL
SELECT c.barcode,
       n.id * 4 + 2,
       'non_cataloged'::TEXT,
       n.circ_time,
       n.circ_time + t.circ_duration,
       NULL::TIMESTAMPTZ,
       FALSE,
       t.name,
       NULL::TEXT,
       NULL::TEXT,
       lib.shortname
  FROM action.non_cataloged_circulation n
  JOIN actor.card c ON c.usr = n.patron
  JOIN config.non_cataloged_type t ON t.id = n.item_type
  LEFT JOIN actor.org_unit lib ON lib.id = n.circ_lib;

-- holds: open and closed holds still in action.hold_request (aged holds keep no patron).
-- The title follows the hold's type: T a title (target = bib record), V a volume (call
-- number), C/R/F a copy; other types (M metarecord, I issuance, P part) have no title here.
-- Evergreen ends an expired hold by cancelling it with cause 1 or 2: those read `expired`.
CREATE OR REPLACE VIEW bulwark.holds AS
SELECT c.barcode AS card_barcode,
       ahr.id AS hold_id,
       ahr.request_time,
       ahr.hold_type,
       rec.title,
       rec.author,
       pickup.shortname AS pickup_library,
       CASE
           WHEN ahr.cancel_time IS NOT NULL AND ahr.cancel_cause IN (1, 2) THEN 'expired'
           WHEN ahr.cancel_time IS NOT NULL THEN 'cancelled'
           WHEN ahr.fulfillment_time IS NOT NULL THEN 'fulfilled'
           WHEN ahr.shelf_time IS NOT NULL THEN 'on_hold_shelf'
           WHEN ahr.capture_time IS NOT NULL THEN 'captured'
           WHEN ahr.frozen THEN 'suspended'
           ELSE 'pending'
       END AS status,
       ahr.expire_time,
       ahr.fulfillment_time,
       ahr.cancel_time
  FROM action.hold_request ahr
  JOIN actor.card c ON c.usr = ahr.usr
  LEFT JOIN asset.copy hc ON ahr.hold_type IN ('C', 'R', 'F') AND hc.id = ahr.target
  LEFT JOIN asset.call_number hv ON hv.id = CASE
           WHEN ahr.hold_type = 'V' THEN ahr.target
           WHEN ahr.hold_type IN ('C', 'R', 'F') THEN hc.call_number
       END
  LEFT JOIN reporter.materialized_simple_record rec ON rec.id = CASE
           WHEN ahr.hold_type = 'T' THEN ahr.target
           ELSE hv.record
       END
  LEFT JOIN actor.org_unit pickup ON pickup.id = ahr.pickup_lib;

-- Evergreen indexes these tables by patron alone; each disclosure filters by patron and a
-- time range, so pair them (ordinary indexes with prefixed names; upgrades leave them be).
CREATE INDEX IF NOT EXISTS bulwark_circ_usr_start ON action.circulation (usr, xact_start, id);
CREATE INDEX IF NOT EXISTS bulwark_circ_history_usr_start
    ON action.usr_circ_history (usr, xact_start) WHERE source_circ IS NULL;
CREATE INDEX IF NOT EXISTS bulwark_noncat_patron_time
    ON action.non_cataloged_circulation (patron, circ_time);
CREATE INDEX IF NOT EXISTS bulwark_hold_usr_time ON action.hold_request (usr, request_time);
