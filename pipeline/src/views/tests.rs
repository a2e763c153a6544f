//! The view files themselves: all listed, documented, ordered and renderable.

use std::collections::BTreeSet;

use super::*;

#[test]
fn every_file_of_views_is_listed_once() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../views");
    let files: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|name| name.strip_suffix(".sql").map(str::to_owned))
        .collect();
    let listed: BTreeSet<String> = VIEWS.iter().map(|v| v.name.to_owned()).collect();
    assert_eq!(files, listed, "views/ and VIEWS differ");
    assert_eq!(listed.len(), VIEWS.len(), "a view is listed twice");
}

#[test]
fn every_view_says_what_it_computes() {
    for view in VIEWS {
        let first = view.sql.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(&format!("-- {}: ", view.name)),
            "{} must start with `-- {}: what it is`",
            view.name,
            view.name
        );
        assert!(!view.summary().is_empty(), "{}", view.name);
        let body = view.sql.trim_end();
        assert!(
            !body.ends_with(';'),
            "{} ends with ';' (BigQuery views must not)",
            view.name
        );
        for line in view
            .sql
            .lines()
            .filter(|l| l.trim_start().starts_with("--"))
        {
            // bqemulator counts `@name` in comments as parameters and refuses the query.
            assert!(
                !line.contains('@'),
                "{}: a comment names a parameter: {line}",
                view.name
            );
        }
    }
}

#[test]
fn views_read_only_tables_and_views_of_earlier_layers() {
    let tables: Vec<&str> = crate::sql::TABLES.iter().map(|t| t.name).collect();
    for view in VIEWS {
        for dependency in view.dependencies() {
            assert!(
                dependency.layer < view.layer,
                "{} ({}) reads {} ({})",
                view.name,
                view.layer,
                dependency.name,
                dependency.layer
            );
        }
        // Every `${dataset}name` is a view or one of gma's tables.
        for (at, _) in view.sql.match_indices("${dataset}") {
            let rest = &view.sql[at + "${dataset}".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| {
                    c.is_ascii_alphanumeric() || *c == '_' || *c == '$' || *c == '{' || *c == '}'
                })
                .collect();
            assert!(
                name == "${events_table}"
                    || find(&name).is_some()
                    || tables.contains(&name.as_str()),
                "{} reads {name}, which is neither a view nor a table",
                view.name
            );
        }
    }
    assert_eq!(
        find("pull_requests")
            .unwrap()
            .dependencies()
            .iter()
            .map(|v| v.name)
            .collect::<Vec<_>>(),
        ["pull_request_events"]
    );
    let needed: Vec<&str> = with_dependencies([find("dora_lead_time").unwrap()])
        .iter()
        .map(|v| v.name)
        .collect();
    for name in [
        "unique_events",
        "pull_requests",
        "pr_cycle_time",
        "deployment_outcomes",
        "dora_lead_time",
    ] {
        assert!(needed.contains(&name), "{name} missing from {needed:?}");
    }
    assert!(!needed.contains(&"teams"), "{needed:?}");
}

#[test]
fn rendering_fills_every_placeholder_but_the_dataset() {
    let settings = ViewSettings {
        events_table: "webhook_events".into(),
        incident_labels: vec!["Incident".into(), "sev-1".into()],
        production_environments: vec!["live".into()],
        ..ViewSettings::default()
    };
    for view in VIEWS {
        let sql = settings.render(view).unwrap();
        let left: Vec<&str> = sql
            .match_indices("${")
            .map(|(at, _)| &sql[at..sql[at..].find('}').map_or(sql.len(), |end| at + end + 1)])
            .filter(|placeholder| *placeholder != "${dataset}")
            .collect();
        assert!(left.is_empty(), "{} keeps {left:?}", view.name);
    }
    let base = settings.render(find("unique_events").unwrap()).unwrap();
    assert!(base.contains("`${dataset}webhook_events`"), "{base}");
    let restore = settings
        .render(find("dora_time_to_restore").unwrap())
        .unwrap();
    assert!(
        restore.contains("IN UNNEST(['incident', 'sev-1'])"),
        "{restore}"
    );
    let outcomes = settings
        .render(find("deployment_outcomes").unwrap())
        .unwrap();
    assert!(outcomes.contains("IN UNNEST(['live'])"), "{outcomes}");
}

#[test]
fn settings_that_would_break_the_sql_are_refused() {
    let view = find("dora_time_to_restore").unwrap();
    for settings in [
        ViewSettings {
            incident_labels: vec!["it's down".into()],
            ..ViewSettings::default()
        },
        ViewSettings {
            production_environments: vec![" ".into()],
            ..ViewSettings::default()
        },
        ViewSettings {
            events_table: "events; DROP".into(),
            ..ViewSettings::default()
        },
    ] {
        let err = settings.render(view).unwrap_err().to_string();
        assert!(err.contains("setting"), "{err}");
    }
    // No labels at all is a valid choice: no incidents.
    let none = ViewSettings {
        incident_labels: Vec::new(),
        ..ViewSettings::default()
    };
    assert!(none.render(view).unwrap().contains("IN UNNEST([])"));
}
