-- 1. The job's plan, made once by the submitter (docs: schemas/sql/README.md, "jobs.plan"): the input columns the
--    workers read (name, kind, nullable), the columns carried to the results, the resolved feature columns and the
--    model's output columns. Workers score every chunk from it and check that each file still has those columns.
--    Null for jobs submitted before this migration (a worker plans those from the file, as it did before).

ALTER TABLE scoring.jobs ADD COLUMN plan jsonb;

-- 2. The tables of Quartz.NET 4.7's clustered ADO.NET job store (PostgreSQLDelegate, table prefix QRTZ_), which the
--    scheduler role needs; the scheduler only validates them at start. Same tables, columns and indexes as the script
--    Quartz 4.7.3 itself runs to provision a PostgreSQL schema (Quartz.Impl.AdoJobStore.Schema.create_postgres.sql,
--    Apache-2.0); database/tables/tables_postgres.sql in quartznet/quartznet describes the same tables.
--
--    Unqualified, like Quartz's own queries: they land in the first schema of the search path (normally public), where
--    the scheduler finds them. IF NOT EXISTS everywhere: databases whose scheduler created these tables at start-up (as
--    earlier versions did) keep them and their rows. A table left by Quartz 3.x is kept as it is, and the scheduler
--    refuses to start until database/migrations/4.0/schema_30_to_40_upgrade_postgres.sql of Quartz.NET was run.

CREATE TABLE IF NOT EXISTS qrtz_job_details (
    sched_name          text    NOT NULL,
    job_name            text    NOT NULL,
    job_group           text    NOT NULL,
    description         text    NULL,
    job_class_name      text    NOT NULL,
    is_durable          bool    NOT NULL,
    is_nonconcurrent    bool    NOT NULL,
    is_update_data      bool    NOT NULL,
    requests_recovery   bool    NOT NULL,
    job_data            bytea   NULL,
    PRIMARY KEY (sched_name, job_name, job_group)
);

CREATE TABLE IF NOT EXISTS qrtz_triggers (
    sched_name              text            NOT NULL,
    trigger_name            text            NOT NULL,
    trigger_group           text            NOT NULL,
    job_name                text            NOT NULL,
    job_group               text            NOT NULL,
    description             text            NULL,
    next_fire_time          bigint          NULL,
    prev_fire_time          bigint          NULL,
    priority                integer         NULL,
    trigger_state           text            NOT NULL,
    trigger_type            text            NOT NULL,
    start_time              bigint          NOT NULL,
    end_time                bigint          NULL,
    calendar_name           text            NULL,
    misfire_instr           smallint        NULL,
    misfire_orig_fire_time  bigint          NULL,
    execution_group         varchar(200)    NULL,
    preferred_node          varchar(200)    NULL,
    preferred_node_auto     bool            NOT NULL DEFAULT false,
    retry_policy            varchar(250)    NULL,
    retry_attempt           integer         NULL,
    continues_trigger_name  text            NULL,
    continues_trigger_group text            NULL,
    continuation_condition  integer         NULL,
    overlap_policy          integer         NULL,
    pause_reason            varchar(250)    NULL,
    paused_by               varchar(200)    NULL,
    paused_at               bigint          NULL,
    misfire_threshold       bigint          NULL,
    fixed_delay             bool            NULL,
    job_data                bytea           NULL,
    PRIMARY KEY (sched_name, trigger_name, trigger_group),
    FOREIGN KEY (sched_name, job_name, job_group) REFERENCES qrtz_job_details (sched_name, job_name, job_group)
);

CREATE TABLE IF NOT EXISTS qrtz_simple_triggers (
    sched_name      text    NOT NULL,
    trigger_name    text    NOT NULL,
    trigger_group   text    NOT NULL,
    repeat_count    bigint  NOT NULL,
    repeat_interval bigint  NOT NULL,
    times_triggered bigint  NOT NULL,
    PRIMARY KEY (sched_name, trigger_name, trigger_group),
    FOREIGN KEY (sched_name, trigger_name, trigger_group) REFERENCES qrtz_triggers (sched_name, trigger_name, trigger_group) ON DELETE CASCADE
);

CREATE TABLE IF NOT EXISTS qrtz_cron_triggers (
    sched_name      text    NOT NULL,
    trigger_name    text    NOT NULL,
    trigger_group   text    NOT NULL,
    cron_expression text    NOT NULL,
    time_zone_id    text,
    PRIMARY KEY (sched_name, trigger_name, trigger_group),
    FOREIGN KEY (sched_name, trigger_name, trigger_group) REFERENCES qrtz_triggers (sched_name, trigger_name, trigger_group) ON DELETE CASCADE
);

CREATE TABLE IF NOT EXISTS qrtz_simprop_triggers (
    sched_name      text    NOT NULL,
    trigger_name    text    NOT NULL,
    trigger_group   text    NOT NULL,
    str_prop_1      text    NULL,
    str_prop_2      text    NULL,
    str_prop_3      text    NULL,
    int_prop_1      integer NULL,
    int_prop_2      integer NULL,
    long_prop_1     bigint  NULL,
    long_prop_2     bigint  NULL,
    dec_prop_1      numeric NULL,
    dec_prop_2      numeric NULL,
    bool_prop_1     bool    NULL,
    bool_prop_2     bool    NULL,
    time_zone_id    text    NULL,
    PRIMARY KEY (sched_name, trigger_name, trigger_group),
    FOREIGN KEY (sched_name, trigger_name, trigger_group) REFERENCES qrtz_triggers (sched_name, trigger_name, trigger_group) ON DELETE CASCADE
);

CREATE TABLE IF NOT EXISTS qrtz_blob_triggers (
    sched_name      text    NOT NULL,
    trigger_name    text    NOT NULL,
    trigger_group   text    NOT NULL,
    blob_data       bytea   NULL,
    PRIMARY KEY (sched_name, trigger_name, trigger_group),
    FOREIGN KEY (sched_name, trigger_name, trigger_group) REFERENCES qrtz_triggers (sched_name, trigger_name, trigger_group) ON DELETE CASCADE
);

CREATE TABLE IF NOT EXISTS qrtz_calendars (
    sched_name      text    NOT NULL,
    calendar_name   text    NOT NULL,
    calendar        bytea   NOT NULL,
    PRIMARY KEY (sched_name, calendar_name)
);

CREATE TABLE IF NOT EXISTS qrtz_paused_trigger_grps (
    sched_name      text            NOT NULL,
    trigger_group   text            NOT NULL,
    pause_reason    varchar(250)    NULL,
    paused_by       varchar(200)    NULL,
    paused_at       bigint          NULL,
    PRIMARY KEY (sched_name, trigger_group)
);

CREATE TABLE IF NOT EXISTS qrtz_paused_job_grps (
    sched_name      text            NOT NULL,
    job_group       text            NOT NULL,
    pause_reason    varchar(250)    NULL,
    paused_by       varchar(200)    NULL,
    paused_at       bigint          NULL,
    PRIMARY KEY (sched_name, job_group)
);

CREATE TABLE IF NOT EXISTS qrtz_fired_triggers (
    sched_name                  text            NOT NULL,
    entry_id                    text            NOT NULL,
    trigger_name                text            NOT NULL,
    trigger_group               text            NOT NULL,
    instance_name               text            NOT NULL,
    fired_time                  bigint          NOT NULL,
    sched_time                  bigint          NOT NULL,
    priority                    integer         NOT NULL,
    state                       text            NOT NULL,
    job_name                    text            NULL,
    job_group                   text            NULL,
    is_nonconcurrent            bool            NOT NULL,
    requests_recovery           bool            NULL,
    execution_group             varchar(200)    NULL,
    progress                    integer         NULL,
    progress_message            varchar(250)    NULL,
    interrupt_requested_time    bigint          NULL,
    PRIMARY KEY (sched_name, entry_id)
);

CREATE TABLE IF NOT EXISTS qrtz_scheduler_state (
    sched_name          text        NOT NULL,
    instance_name       text        NOT NULL,
    last_checkin_time   bigint      NOT NULL,
    checkin_interval    bigint      NOT NULL,
    quartz_version      varchar(20) NULL,
    PRIMARY KEY (sched_name, instance_name)
);

CREATE TABLE IF NOT EXISTS qrtz_locks (
    sched_name  text    NOT NULL,
    lock_name   text    NOT NULL,
    PRIMARY KEY (sched_name, lock_name)
);

-- Execution history (UseExecutionHistory, off here): created anyway, as Quartz does, so turning it on needs no migration.
CREATE TABLE IF NOT EXISTS qrtz_execution_history (
    sched_name          text    NOT NULL,
    entry_id            text    NOT NULL,
    instance_name       text    NOT NULL,
    job_name            text    NOT NULL,
    job_group           text    NOT NULL,
    trigger_name        text    NOT NULL,
    trigger_group       text    NOT NULL,
    fired_time          bigint  NOT NULL,
    run_time            bigint  NOT NULL,
    succeeded           bool    NOT NULL,
    error_message       text    NULL,
    retry_attempt       integer NOT NULL DEFAULT 0,
    retry_scheduled     bool    NOT NULL DEFAULT false,
    execution_log       text    NULL,
    result              integer NULL,
    summary             text    NULL,
    metrics             text    NULL,
    manual              bool    NULL,
    fire_instance_id    text    NULL,
    job_input           text    NULL,
    job_input_too_large bool    NULL,
    PRIMARY KEY (sched_name, entry_id)
);

CREATE TABLE IF NOT EXISTS qrtz_misfire_history (
    sched_name      text    NOT NULL,
    entry_id        text    NOT NULL,
    instance_name   text    NOT NULL,
    trigger_name    text    NOT NULL,
    trigger_group   text    NOT NULL,
    job_name        text    NULL,
    job_group       text    NULL,
    misfire_time    bigint  NOT NULL,
    sched_time      bigint  NULL,
    reason          integer NULL,
    PRIMARY KEY (sched_name, entry_id)
);

CREATE TABLE IF NOT EXISTS qrtz_job_status (
    sched_name              text    NOT NULL,
    job_group               text    NOT NULL,
    job_name                text    NOT NULL,
    first_fired_time        bigint  NOT NULL,
    last_fired_time         bigint  NOT NULL,
    last_result             integer NOT NULL,
    last_run_time           bigint  NOT NULL,
    last_instance_name      text    NOT NULL,
    last_entry_id           text    NULL,
    last_summary            text    NULL,
    last_success_time       bigint  NULL,
    last_failure_time       bigint  NULL,
    last_failure_message    text    NULL,
    consecutive_failures    integer NOT NULL DEFAULT 0,
    run_count               bigint  NOT NULL DEFAULT 0,
    failure_count           bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (sched_name, job_group, job_name)
);

CREATE INDEX IF NOT EXISTS idx_qrtz_j_g_n ON qrtz_job_details (sched_name, job_group, job_name);
CREATE INDEX IF NOT EXISTS idx_qrtz_t_j ON qrtz_triggers (sched_name, job_name, job_group);
CREATE INDEX IF NOT EXISTS idx_qrtz_t_g_n ON qrtz_triggers (sched_name, trigger_group, trigger_name);
CREATE INDEX IF NOT EXISTS idx_qrtz_t_c ON qrtz_triggers (sched_name, calendar_name);
CREATE INDEX IF NOT EXISTS idx_qrtz_t_nft_st ON qrtz_triggers (sched_name, trigger_state, next_fire_time ASC, priority DESC, misfire_instr);
CREATE INDEX IF NOT EXISTS idx_qrtz_ft_inst_job_req_rcvry ON qrtz_fired_triggers (sched_name, instance_name, requests_recovery);
CREATE INDEX IF NOT EXISTS idx_qrtz_ft_j_g ON qrtz_fired_triggers (sched_name, job_name, job_group);
CREATE INDEX IF NOT EXISTS idx_qrtz_ft_t_g ON qrtz_fired_triggers (sched_name, trigger_name, trigger_group);
CREATE INDEX IF NOT EXISTS idx_qrtz_eh_fired_time ON qrtz_execution_history (sched_name, fired_time);
CREATE INDEX IF NOT EXISTS idx_qrtz_eh_inst ON qrtz_execution_history (sched_name, instance_name);
CREATE INDEX IF NOT EXISTS idx_qrtz_mh_misfire_time ON qrtz_misfire_history (sched_name, misfire_time);
CREATE INDEX IF NOT EXISTS idx_qrtz_mh_inst ON qrtz_misfire_history (sched_name, instance_name);
CREATE INDEX IF NOT EXISTS idx_qrtz_eh_job_time ON qrtz_execution_history (sched_name, job_group, job_name, fired_time);
CREATE INDEX IF NOT EXISTS idx_qrtz_eh_fire_inst ON qrtz_execution_history (sched_name, fire_instance_id);
CREATE INDEX IF NOT EXISTS idx_qrtz_eh_trig_time ON qrtz_execution_history (sched_name, trigger_group, trigger_name, fired_time);
