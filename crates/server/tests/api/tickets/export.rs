//! The data export (seed 003's "DataPlatform"): `ticket.purchased` events become JSON
//! lines, a batch in one write, and an event handed over again adds no line.

use serde_json::{Value, json};

use matsuri_bus::{Consumer, Event};
use matsuri_tickets::{DataExport, topics};

use crate::helpers::{Backend, TestApp, spawn_app};

crate::coord_backend_tests!(events_handed_over_again_are_exported_once);

/// The export file's lines, parsed.
pub fn exported(app: &TestApp) -> Vec<Value> {
    let path = app.data_dir.join("exports/ticket-purchases.jsonl");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn purchase(id: &str) -> Event {
    Event {
        id: id.to_owned(),
        topic: topics::TICKET_PURCHASED.to_owned(),
        key: None,
        payload: json!({"reservation_id": format!("r-{id}")}),
        created_at: 1_700_000_000_000,
    }
}

async fn events_handed_over_again_are_exported_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let export = DataExport::new(
        app.components.db.clone(),
        app.components.clock.clone(),
        &app.data_dir,
    );
    let (first, second, third) = (purchase("e1"), purchase("e2"), purchase("e3"));

    let handled = export.handle_all(&[&first, &second]).await;
    handled.unwrap().unwrap();
    let ids = |lines: Vec<Value>| -> Vec<String> {
        lines
            .iter()
            .map(|l| l["event_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(exported(&app)), ["e1", "e2"]);

    export
        .handle_all(&[&first, &second])
        .await
        .unwrap()
        .unwrap();
    export.handle(&second).await.unwrap();
    export
        .handle_all(&[&second, &third])
        .await
        .unwrap()
        .unwrap();
    let lines = exported(&app);
    assert_eq!(ids(lines.clone()), ["e1", "e2", "e3"]);
    assert_eq!(lines[2]["topic"], "ticket.purchased");
    assert_eq!(lines[2]["purchase"]["reservation_id"], "r-e3");
}
