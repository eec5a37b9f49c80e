//! The g3 views on top of logwire's `records` table, and the statistics query behind `logwire g3 stats`.
//!
//! - `g3_tasks`: one row per finished task (its span end): server, task type, user, upstream, escaper,
//!   reason, message, `start_ns`/`end_ns`, `wait_ns`/`ready_ns`/`total_ns`, `bytes_up` (read from the
//!   client: `c_rd_bytes`) and `bytes_down` (written to it: `c_wr_bytes`), rsp_status.
//! - `g3_task_timeline`: every record of every task (events, span start/end, escapes) in time order
//!   columns: the stage timeline Created → Connected → Periodic… → Finished.
//! - `g3_resolve_links`: resolve errors matched to the tasks whose upstream host is the domain, within the
//!   task's time (± 5 s): g3proxy's resolve logs carry no task_id.
//! - `g3_stats_by_server`, `…_task_type`, `…_reason`, `…_user`, `…_upstream`: per group, the task count, the
//!   reason breakdown (JSON object), p50/p90/p99 of wait, ready and total time (nearest rank, ns), and
//!   bytes up and down — the numbers `logwire g3 stats` prints.

/// The grouping dimensions of the stats.
pub const DIMENSIONS: [&str; 5] = ["server", "task_type", "reason", "user", "upstream"];

/// One row per finished task.
pub const TASKS_SELECT: &str = "SELECT trace_id AS task_id, \
    json_extract(attrs, '$.start_at') AS start_ns, time_ns AS end_ns, \
    json_extract(attrs, '$.server_name') AS server, json_extract(attrs, '$.server_type') AS server_type, \
    json_extract(attrs, '$.task_type') AS task_type, json_extract(attrs, '$.user') AS user, \
    json_extract(attrs, '$.upstream') AS upstream, json_extract(attrs, '$.escaper') AS escaper, \
    json_extract(attrs, '$.reason') AS reason, body AS msg, \
    json_extract(attrs, '$.wait_time') AS wait_ns, json_extract(attrs, '$.ready_time') AS ready_ns, \
    json_extract(attrs, '$.total_time') AS total_ns, \
    COALESCE(json_extract(attrs, '$.c_rd_bytes'), 0) AS bytes_up, \
    COALESCE(json_extract(attrs, '$.c_wr_bytes'), 0) AS bytes_down, \
    json_extract(attrs, '$.rsp_status') AS rsp_status \
    FROM records WHERE source = 'g3' AND kind = 'span_end' AND name LIKE 'g3:task:%'";

const TIMELINE_SELECT: &str = "SELECT trace_id AS task_id, time_ns, kind, name, \
    json_extract(attrs, '$.task_event') AS task_event, json_extract(attrs, '$.stage') AS stage, \
    json_extract(attrs, '$.reason') AS reason, body AS msg \
    FROM records WHERE source = 'g3' AND (name LIKE 'g3:task%' OR name LIKE 'g3:escape:%')";

const RESOLVE_LINKS_SELECT: &str = "SELECT t.task_id AS task_id, r.time_ns AS time_ns, \
    json_extract(r.attrs, '$.domain') AS domain, json_extract(r.attrs, '$.error_type') AS error_type, \
    json_extract(r.attrs, '$.error_subtype') AS error_subtype, r.body AS msg \
    FROM records AS r JOIN (SELECT * FROM g3_tasks) AS t \
    ON t.upstream LIKE json_extract(r.attrs, '$.domain') || ':%' \
    AND r.time_ns BETWEEN t.start_ns - 5000000000 AND t.end_ns + 5000000000 \
    WHERE r.source = 'g3' AND r.name = 'g3:resolve'";

fn group_expr(dimension: &str) -> Option<&'static str> {
    Some(match dimension {
        "server" => "COALESCE(server, '-')",
        "task_type" => "COALESCE(task_type, '-')",
        "reason" => "COALESCE(reason, '-')",
        "user" => "COALESCE(user, '-')",
        "upstream" => "COALESCE(upstream, '-')",
        _ => return None,
    })
}

fn percentiles(metric: &str) -> String {
    let col = format!("{metric}_ns");
    let rank = |p: u32| format!("MAX(CASE WHEN rn = MAX(1, ({p} * n + 99) / 100) THEN v END)");
    format!(
        "{metric} AS (SELECT grp, {} AS {metric}_p50, {} AS {metric}_p90, {} AS {metric}_p99 FROM (\
         SELECT grp, v, ROW_NUMBER() OVER (PARTITION BY grp ORDER BY v) AS rn, COUNT(*) OVER (PARTITION BY grp) AS n \
         FROM (SELECT grp, {col} AS v FROM t WHERE {col} IS NOT NULL)) GROUP BY grp)",
        rank(50),
        rank(90),
        rank(99)
    )
}

/// The statistics query for one dimension, over tasks that ended at or after `since_ns` when given.
/// `None` for an unknown dimension.
pub fn stats_select(dimension: &str, since_ns: Option<i64>) -> Option<String> {
    let grp = group_expr(dimension)?;
    let filter = since_ns.map(|ns| format!(" WHERE end_ns >= {ns}")).unwrap_or_default();
    Some(format!(
        "WITH tasks AS ({TASKS_SELECT}), \
         t AS (SELECT {grp} AS grp, reason, wait_ns, ready_ns, total_ns, bytes_up, bytes_down FROM tasks{filter}), \
         g AS (SELECT grp, COUNT(*) AS tasks, SUM(bytes_up) AS bytes_up, SUM(bytes_down) AS bytes_down FROM t GROUP BY grp), \
         r AS (SELECT grp, json_group_object(reason, n) AS reasons FROM \
               (SELECT grp, COALESCE(reason, '-') AS reason, COUNT(*) AS n FROM t GROUP BY grp, reason) GROUP BY grp), \
         {}, {}, {} \
         SELECT g.grp AS {dimension}, g.tasks, r.reasons, \
         wait.wait_p50, wait.wait_p90, wait.wait_p99, ready.ready_p50, ready.ready_p90, ready.ready_p99, \
         total.total_p50, total.total_p90, total.total_p99, g.bytes_up, g.bytes_down \
         FROM g LEFT JOIN r ON r.grp = g.grp LEFT JOIN wait ON wait.grp = g.grp \
         LEFT JOIN ready ON ready.grp = g.grp LEFT JOIN total ON total.grp = g.grp \
         ORDER BY g.tasks DESC, g.grp",
        percentiles("wait"),
        percentiles("ready"),
        percentiles("total"),
    ))
}

/// Every `CREATE VIEW IF NOT EXISTS` statement of the g3 views.
pub fn view_statements() -> Vec<String> {
    let mut out = vec![
        format!("CREATE VIEW IF NOT EXISTS g3_tasks AS {TASKS_SELECT}"),
        format!("CREATE VIEW IF NOT EXISTS g3_task_timeline AS {TIMELINE_SELECT}"),
        format!("CREATE VIEW IF NOT EXISTS g3_resolve_links AS {RESOLVE_LINKS_SELECT}"),
    ];
    for d in DIMENSIONS {
        if let Some(select) = stats_select(d, None) {
            out.push(format!("CREATE VIEW IF NOT EXISTS g3_stats_by_{d} AS {select}"));
        }
    }
    out
}

/// Create the g3 views in the logwire store at `path` (whose `records` table must exist), on a connection
/// of its own. Idempotent.
#[cfg(feature = "sqlite")]
pub fn install_views(path: &std::path::Path) -> rusqlite::Result<()> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    for statement in view_statements() {
        conn.execute_batch(&statement)?;
    }
    Ok(())
}
