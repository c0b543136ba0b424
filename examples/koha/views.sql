-- Bulwark over Koha: read-only views that put each record category in one place.
--
-- Written against Koha's published schema (installer/data/mysql/kohastructure.sql, Koha 23.x
-- and later: issues.issue_id, old_issues.issue_id, reserves.reserve_id, illrequests, ...).
-- Apply to the Koha database as a user that may create views:
--
--     mariadb koha_library < views.sql
--
-- Patrons are identified by their library card number (borrowers.cardnumber): that is the id
-- a court order names. Each view carries only the columns that may ever be disclosed, so the
-- database account Bulwark uses can be limited to SELECT on these views (see README.md) and
-- never sees password hashes, staff notes or session ids. Loans and holds of anonymised
-- patrons (borrowernumber NULL) belong to nobody and are left out by the inner joins.

-- registration: the patron's own record.
CREATE OR REPLACE VIEW bulwark_registration AS
SELECT
    b.borrowernumber,
    b.cardnumber,
    b.surname,
    b.firstname,
    b.address,
    b.address2,
    b.city,
    b.zipcode,
    b.email,
    b.phone,
    b.dateofbirth,
    b.branchcode,
    b.categorycode,
    b.dateenrolled,
    b.dateexpiry
FROM borrowers b;

-- circulation: current loans (issues) and returned ones (old_issues), with the title.
-- issue_id is kept when a loan moves to old_issues, so it is unique across both.
CREATE OR REPLACE VIEW bulwark_circulation AS
SELECT
    i.issue_id,
    b.cardnumber,
    bi.title,
    bi.author,
    it.barcode,
    i.branchcode,
    i.issuedate,
    i.date_due,
    i.returndate
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
    oi.returndate
FROM old_issues oi
JOIN borrowers b ON b.borrowernumber = oi.borrowernumber
LEFT JOIN items it ON it.itemnumber = oi.itemnumber
LEFT JOIN biblio bi ON bi.biblionumber = it.biblionumber;

-- holds: open holds (reserves) and finished ones (old_reserves), with the title and a
-- readable status instead of Koha's one-letter `found` code. reserve_id is kept when a hold
-- moves to old_reserves.
CREATE OR REPLACE VIEW bulwark_holds AS
SELECT
    r.reserve_id,
    b.cardnumber,
    bi.title,
    r.reservedate,
    r.branchcode,
    CASE r.found
        WHEN 'W' THEN 'waiting'
        WHEN 'T' THEN 'in_transit'
        WHEN 'P' THEN 'processing'
        ELSE 'pending'
    END AS status,
    r.expirationdate,
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
        WHEN o.cancellationdate IS NOT NULL THEN 'cancelled'
        WHEN o.found = 'F' THEN 'filled'
        ELSE 'expired'
    END AS status,
    o.expirationdate,
    o.cancellationdate
FROM old_reserves o
JOIN borrowers b ON b.borrowernumber = o.borrowernumber
LEFT JOIN biblio bi ON bi.biblionumber = o.biblionumber;

-- interlibrary_loan: requests and what they were for. A request for something the library
-- does not hold has no biblio; its title and author live in illrequestattributes, whose
-- primary key (illrequest_id, type) makes each subquery return at most one row.
CREATE OR REPLACE VIEW bulwark_illrequests AS
SELECT
    r.illrequest_id,
    b.cardnumber,
    r.placed,
    r.status,
    r.medium,
    r.completed,
    COALESCE(
        bi.title,
        (SELECT a.value FROM illrequestattributes a
         WHERE a.illrequest_id = r.illrequest_id AND a.type = 'title')
    ) AS title,
    COALESCE(
        bi.author,
        (SELECT a.value FROM illrequestattributes a
         WHERE a.illrequest_id = r.illrequest_id AND a.type = 'author')
    ) AS author,
    r.notesopac
FROM illrequests r
JOIN borrowers b ON b.borrowernumber = r.borrowernumber
LEFT JOIN biblio bi ON bi.biblionumber = r.biblio_id;

-- search_history: OPAC searches kept for patrons who opted in (search_history.userid is the
-- borrowernumber). The session id and the raw CGI string stay behind.
CREATE OR REPLACE VIEW bulwark_search_history AS
SELECT
    s.id,
    b.cardnumber,
    s.`time` AS searched_at,
    s.query_desc,
    s.`type` AS search_type,
    s.total
FROM search_history s
JOIN borrowers b ON b.borrowernumber = s.userid;

-- Indexes every disclosure query needs: the patron, then the date it is matched on. Koha's
-- own indexes cover the patron alone (and issues/old_issues pair it with `timestamp`, not
-- `issuedate`), so without these each query reads all of a patron's history. The names are
-- prefixed so that they never collide with Koha's own.
CREATE INDEX IF NOT EXISTS bulwark_issues_patron_date ON issues (borrowernumber, issuedate);
CREATE INDEX IF NOT EXISTS bulwark_old_issues_patron_date ON old_issues (borrowernumber, issuedate);
CREATE INDEX IF NOT EXISTS bulwark_reserves_patron_date ON reserves (borrowernumber, reservedate);
CREATE INDEX IF NOT EXISTS bulwark_old_reserves_patron_date ON old_reserves (borrowernumber, reservedate);
CREATE INDEX IF NOT EXISTS bulwark_illrequests_patron_date ON illrequests (borrowernumber, placed);
CREATE INDEX IF NOT EXISTS bulwark_search_history_patron_time ON search_history (userid, `time`);
