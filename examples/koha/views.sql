-- Bulwark over Koha: read-only views that put each record category in one place.
--
-- Written against Koha's own table definitions (installer/data/mysql/kohastructure.sql on
-- Koha's main branch; README.md names the commit checked). Apply to the Koha database as its
-- owner (the account in koha-conf.xml), which then owns the views:
--
--     mariadb koha_library < views.sql
--
-- Patrons are identified by their library card number (borrowers.cardnumber): that is the id
-- a court order names. Each view carries only columns that may ever be disclosed, so the
-- account Bulwark uses holds SELECT on these five views and nothing else (README.md, step 2),
-- and never sees password hashes, two-factor secrets, staff notes or session ids. The views
-- run with their definer's rights (SQL SECURITY DEFINER, MariaDB's default).
--
-- Dates are Koha's own: DATE columns are calendar dates, DATETIME columns (issuedate,
-- date_due, returndate) are wall-clock times in Koha's time zone, and search_history.time is a
-- TIMESTAMP (an instant). Bulwark compares each as its type means (docs/records.md).

-- registration: the patron's own record, a state: registered from dateenrolled to dateexpiry
-- (Koha treats a card as valid through its expiry day).
CREATE OR REPLACE SQL SECURITY DEFINER VIEW bulwark_registration AS
SELECT
    b.borrowernumber,
    b.cardnumber,
    b.surname,
    b.firstname,
    b.preferred_name,
    b.address,
    b.address2,
    b.city,
    b.state,
    b.zipcode,
    b.country,
    b.email,
    b.phone,
    b.mobile,
    b.dateofbirth,
    b.branchcode,
    b.categorycode,
    b.dateenrolled,
    b.dateexpiry,
    b.date_renewed
FROM borrowers b;

-- circulation: current loans (issues) and returned ones (old_issues), with the title. issue_id
-- is kept when a loan moves to old_issues, so it is unique across both. Koha sets
-- old_issues.borrowernumber to NULL when it anonymises a loan or deletes its patron, and
-- old_issues.itemnumber to NULL when the item is deleted: such loans belong to nobody here, or
-- have no title or barcode (README.md, "What Koha itself loses").
CREATE OR REPLACE SQL SECURITY DEFINER VIEW bulwark_circulation AS
SELECT
    i.issue_id,
    b.cardnumber,
    bi.title,
    bi.author,
    it.barcode,
    i.branchcode,
    i.issuedate,
    i.date_due,
    i.returndate,
    i.renewals_count,
    i.onsite_checkout
FROM issues i
JOIN borrowers b ON b.borrowernumber = i.borrowernumber
LEFT JOIN items it ON it.itemnumber = i.itemnumber
LEFT JOIN biblio bi ON bi.biblionumber = it.biblionumber
UNION ALL
SELECT
    oi.issue_id,
    b.cardnumber,
    bi.title,
    bi.author,
    it.barcode,
    oi.branchcode,
    oi.issuedate,
    oi.date_due,
    oi.returndate,
    oi.renewals_count,
    oi.onsite_checkout
FROM old_issues oi
JOIN borrowers b ON b.borrowernumber = oi.borrowernumber
LEFT JOIN items it ON it.itemnumber = oi.itemnumber
LEFT JOIN biblio bi ON bi.biblionumber = it.biblionumber;

-- holds: open holds (reserves) and finished ones (old_reserves), with a status as Koha sets it:
--   reserves.found   W waiting, T in transit, P processing; NULL pending (suspended when
--                    reserves.suspend = 1)
--   old_reserves     found F: filled (checked out to the patron);
--                    cancelled by Koha's expiry job (misc/cronjobs/holds/cancel_expired_holds.pl,
--                    C4::Reserves::CancelExpiredReserves): Koha cancels the hold like any other,
--                    setting cancellationdate to the day it ran, after expirationdate or
--                    patron_expiration_date had passed: expired;
--                    any other cancellationdate: cancelled.
-- reserve_id is kept when a hold moves to old_reserves.
CREATE OR REPLACE SQL SECURITY DEFINER VIEW bulwark_holds AS
SELECT
    r.reserve_id,
    b.cardnumber,
    bi.title,
    r.reservedate,
    r.branchcode,
    CASE
        WHEN r.found = 'W' THEN 'waiting'
        WHEN r.found = 'T' THEN 'in_transit'
        WHEN r.found = 'P' THEN 'processing'
        WHEN r.suspend = 1 THEN 'suspended'
        ELSE 'pending'
    END AS status,
    r.expirationdate,
    r.patron_expiration_date,
    r.waitingdate,
    r.cancellationdate
FROM reserves r
JOIN borrowers b ON b.borrowernumber = r.borrowernumber
LEFT JOIN biblio bi ON bi.biblionumber = r.biblionumber
UNION ALL
SELECT
    o.reserve_id,
    b.cardnumber,
    bi.title,
    o.reservedate,
    o.branchcode,
    CASE
        WHEN o.found = 'F' THEN 'filled'
        WHEN o.cancellationdate IS NOT NULL
             AND (o.expirationdate < o.cancellationdate
                  OR o.patron_expiration_date < o.cancellationdate) THEN 'expired'
        WHEN o.cancellationdate IS NOT NULL THEN 'cancelled'
        ELSE 'closed'
    END AS status,
    o.expirationdate,
    o.patron_expiration_date,
    o.waitingdate,
    o.cancellationdate
FROM old_reserves o
JOIN borrowers b ON b.borrowernumber = o.borrowernumber
LEFT JOIN biblio bi ON bi.biblionumber = o.biblionumber;

-- interlibrary_loan: requests and what they were for. A request for something the library does
-- not hold has no biblio; its title and author are in illrequestattributes, keyed by (request,
-- backend, type): the same request can hold attributes of several backends (it was moved from
-- one to another), and only its current backend's are read, so each subquery returns at most
-- one row.
CREATE OR REPLACE SQL SECURITY DEFINER VIEW bulwark_illrequests AS
SELECT
    r.illrequest_id,
    b.cardnumber,
    r.placed,
    r.status,
    r.medium,
    r.completed,
    r.backend,
    COALESCE(
        bi.title,
        (SELECT a.value FROM illrequestattributes a
         WHERE a.illrequest_id = r.illrequest_id AND a.backend = r.backend
           AND a.type = 'title')
    ) AS title,
    COALESCE(
        bi.author,
        (SELECT a.value FROM illrequestattributes a
         WHERE a.illrequest_id = r.illrequest_id AND a.backend = r.backend
           AND a.type = 'author')
    ) AS author,
    r.notesopac
FROM illrequests r
JOIN borrowers b ON b.borrowernumber = r.borrowernumber
LEFT JOIN biblio bi ON bi.biblionumber = r.biblio_id;

-- search_history: OPAC searches kept for patrons who keep a history (search_history.userid is
-- the borrowernumber). `time` is a TIMESTAMP: the exact instant of the search. The session id
-- and the raw CGI string stay behind.
CREATE OR REPLACE SQL SECURITY DEFINER VIEW bulwark_search_history AS
SELECT
    s.id,
    b.cardnumber,
    s.`time` AS searched_at,
    s.query_desc,
    s.`type` AS search_type,
    s.total
FROM search_history s
JOIN borrowers b ON b.borrowernumber = s.userid;

-- Indexes every disclosure query needs: the patron, then the date it is matched on. Koha's own
-- indexes pair issues/old_issues' patron with `timestamp`, not `issuedate`, so without these
-- each query reads all of a patron's history. The names are prefixed so that they never
-- collide with Koha's own, and Koha's upgrades leave them alone.
CREATE INDEX IF NOT EXISTS bulwark_issues_patron_date ON issues (borrowernumber, issuedate);
CREATE INDEX IF NOT EXISTS bulwark_old_issues_patron_date ON old_issues (borrowernumber, issuedate);
CREATE INDEX IF NOT EXISTS bulwark_reserves_patron_date ON reserves (borrowernumber, reservedate);
CREATE INDEX IF NOT EXISTS bulwark_old_reserves_patron_date ON old_reserves (borrowernumber, reservedate);
CREATE INDEX IF NOT EXISTS bulwark_illrequests_patron_date ON illrequests (borrowernumber, placed);
CREATE INDEX IF NOT EXISTS bulwark_search_history_patron_time ON search_history (userid, `time`);
