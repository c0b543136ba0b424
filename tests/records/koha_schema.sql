-- A faithful subset of Koha's tables (installer/data/mysql/kohastructure.sql): the real table
-- and column names and types that examples/koha/views.sql reads, plus a few columns that
-- must never leave (password, secret, borrowernotes, sessionid, notesstaff). Foreign keys to
-- tables outside this subset (branches, categories, ...) are left out.

CREATE TABLE `borrowers` (
  `borrowernumber` int(11) NOT NULL AUTO_INCREMENT,
  `cardnumber` varchar(32) DEFAULT NULL,
  `surname` longtext DEFAULT NULL,
  `firstname` mediumtext DEFAULT NULL,
  `address` longtext DEFAULT NULL,
  `address2` mediumtext DEFAULT NULL,
  `city` longtext DEFAULT NULL,
  `zipcode` tinytext DEFAULT NULL,
  `email` longtext DEFAULT NULL,
  `phone` mediumtext DEFAULT NULL,
  `dateofbirth` date DEFAULT NULL,
  `branchcode` varchar(10) NOT NULL DEFAULT '',
  `categorycode` varchar(10) NOT NULL DEFAULT '',
  `dateenrolled` date DEFAULT NULL,
  `dateexpiry` date DEFAULT NULL,
  `borrowernotes` longtext DEFAULT NULL,
  `password` varchar(60) DEFAULT NULL,
  `secret` mediumtext DEFAULT NULL,
  `userid` varchar(75) DEFAULT NULL,
  PRIMARY KEY (`borrowernumber`),
  UNIQUE KEY `cardnumber` (`cardnumber`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `biblio` (
  `biblionumber` int(11) NOT NULL AUTO_INCREMENT,
  `frameworkcode` varchar(4) NOT NULL DEFAULT '',
  `author` longtext DEFAULT NULL,
  `title` longtext DEFAULT NULL,
  `datecreated` date NOT NULL,
  PRIMARY KEY (`biblionumber`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `items` (
  `itemnumber` int(11) NOT NULL AUTO_INCREMENT,
  `biblionumber` int(11) NOT NULL DEFAULT 0,
  `biblioitemnumber` int(11) NOT NULL DEFAULT 0,
  `barcode` varchar(20) DEFAULT NULL,
  `itemnotes_nonpublic` longtext DEFAULT NULL,
  PRIMARY KEY (`itemnumber`),
  UNIQUE KEY `itembarcodeidx` (`barcode`),
  KEY `itembibnoidx` (`biblionumber`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `issues` (
  `issue_id` int(11) NOT NULL AUTO_INCREMENT,
  `borrowernumber` int(11) NOT NULL,
  `issuer_id` int(11) DEFAULT NULL,
  `itemnumber` int(11) NOT NULL,
  `date_due` datetime DEFAULT NULL,
  `branchcode` varchar(10) DEFAULT NULL,
  `returndate` datetime DEFAULT NULL,
  `lastreneweddate` datetime DEFAULT NULL,
  `renewals_count` tinyint(4) NOT NULL DEFAULT 0,
  `timestamp` timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
  `issuedate` datetime DEFAULT NULL,
  `note` longtext DEFAULT NULL,
  PRIMARY KEY (`issue_id`),
  UNIQUE KEY `itemnumber` (`itemnumber`),
  KEY `issuesborridx` (`borrowernumber`),
  KEY `bordate` (`borrowernumber`,`timestamp`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `old_issues` (
  `issue_id` int(11) NOT NULL,
  `borrowernumber` int(11) DEFAULT NULL,
  `issuer_id` int(11) DEFAULT NULL,
  `itemnumber` int(11) DEFAULT NULL,
  `date_due` datetime DEFAULT NULL,
  `branchcode` varchar(10) DEFAULT NULL,
  `returndate` datetime DEFAULT NULL,
  `lastreneweddate` datetime DEFAULT NULL,
  `renewals_count` tinyint(4) NOT NULL DEFAULT 0,
  `timestamp` timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
  `issuedate` datetime DEFAULT NULL,
  `note` longtext DEFAULT NULL,
  PRIMARY KEY (`issue_id`),
  KEY `old_issuesborridx` (`borrowernumber`),
  KEY `old_bordate` (`borrowernumber`,`timestamp`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `reserves` (
  `reserve_id` int(11) NOT NULL AUTO_INCREMENT,
  `borrowernumber` int(11) NOT NULL DEFAULT 0,
  `reservedate` date DEFAULT NULL,
  `biblionumber` int(11) NOT NULL DEFAULT 0,
  `branchcode` varchar(10) NOT NULL,
  `cancellationdate` date DEFAULT NULL,
  `reservenotes` longtext DEFAULT NULL,
  `priority` smallint(6) NOT NULL DEFAULT 1,
  `found` varchar(1) DEFAULT NULL,
  `timestamp` timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
  `itemnumber` int(11) DEFAULT NULL,
  `expirationdate` date DEFAULT NULL,
  PRIMARY KEY (`reserve_id`),
  KEY `borrowernumber` (`borrowernumber`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `old_reserves` (
  `reserve_id` int(11) NOT NULL,
  `borrowernumber` int(11) DEFAULT NULL,
  `reservedate` date DEFAULT NULL,
  `biblionumber` int(11) DEFAULT NULL,
  `branchcode` varchar(10) DEFAULT NULL,
  `cancellationdate` date DEFAULT NULL,
  `reservenotes` longtext DEFAULT NULL,
  `priority` smallint(6) NOT NULL DEFAULT 1,
  `found` varchar(1) DEFAULT NULL,
  `timestamp` timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
  `itemnumber` int(11) DEFAULT NULL,
  `expirationdate` date DEFAULT NULL,
  PRIMARY KEY (`reserve_id`),
  KEY `old_reserves_borrowernumber` (`borrowernumber`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `illrequests` (
  `illrequest_id` bigint(20) unsigned NOT NULL AUTO_INCREMENT,
  `borrowernumber` int(11) DEFAULT NULL,
  `biblio_id` int(11) DEFAULT NULL,
  `branchcode` varchar(50) NOT NULL,
  `status` varchar(50) DEFAULT NULL,
  `placed` date DEFAULT NULL,
  `updated` timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
  `completed` date DEFAULT NULL,
  `medium` varchar(30) DEFAULT NULL,
  `notesopac` mediumtext DEFAULT NULL,
  `notesstaff` mediumtext DEFAULT NULL,
  `backend` varchar(20) DEFAULT NULL,
  PRIMARY KEY (`illrequest_id`),
  KEY `illrequests_bnfk` (`borrowernumber`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `illrequestattributes` (
  `illrequest_id` bigint(20) unsigned NOT NULL,
  `type` varchar(200) NOT NULL,
  `value` mediumtext NOT NULL,
  `readonly` tinyint(1) NOT NULL DEFAULT 1,
  PRIMARY KEY (`illrequest_id`,`type`(191))
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE `search_history` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `userid` int(11) NOT NULL,
  `sessionid` varchar(32) NOT NULL,
  `query_desc` varchar(255) NOT NULL,
  `query_cgi` mediumtext NOT NULL,
  `type` varchar(16) NOT NULL DEFAULT 'biblio',
  `total` int(11) NOT NULL,
  `time` timestamp NOT NULL DEFAULT current_timestamp(),
  PRIMARY KEY (`id`),
  KEY `userid` (`userid`),
  KEY `sessionid` (`sessionid`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
