-- The books of every digest the SMTP server accepted, so later digests never repeat them.
-- grain: one row per (digest_id, rank); key: (digest_id, rank)
-- upstream: none (written by shelfwise.digest.history)
-- parameters: none
-- materialized: ddl
create table if not exists models.digests (
    digest_id bigint not null,
    sent_at timestamp not null,
    recipient varchar not null,
    run_id bigint not null,
    kind varchar not null,
    book_key bigint not null,
    rank integer not null,
    closest_key bigint,
    favourites json not null,
    message_id varchar,
    primary key (digest_id, rank)
)
