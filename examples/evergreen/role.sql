-- The least-privilege account Bulwark reads Evergreen with: SELECT on the three views and
-- nothing else. Run as the database owner after views.sql, with your own password and your
-- library's time zone (the same IANA name as BULWARK_TIMEZONE):
--   psql -d evergreen -f role.sql
CREATE ROLE bulwark_reader LOGIN PASSWORD 'replace-with-a-long-random-password';
REVOKE ALL ON SCHEMA bulwark FROM PUBLIC;
GRANT USAGE ON SCHEMA bulwark TO bulwark_reader;
GRANT SELECT ON bulwark.registration, bulwark.circulation, bulwark.holds TO bulwark_reader;
ALTER ROLE bulwark_reader SET search_path = bulwark;
ALTER ROLE bulwark_reader SET timezone = 'America/Chicago';
