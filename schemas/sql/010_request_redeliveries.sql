-- Score requests the broker delivered again after a delivery that was never acknowledged (a worker that died while
-- handling it, or a lost connection). Counted per request id so that a request that kills every worker it reaches is
-- moved to the error queue after BatchScoring:Requests:MaxRedeliveries instead of circling forever. Only redelivered
-- messages touch this table; rows older than a day are dropped when new ones are counted.

CREATE TABLE scoring.request_redeliveries (
    request_id     text        PRIMARY KEY,
    redeliveries   integer     NOT NULL,
    first_at       timestamptz NOT NULL DEFAULT now(),
    last_at        timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE scoring.request_redeliveries IS
    'Score requests redelivered by the broker, by request id: how often; past MaxRedeliveries they go to the error queue.';
