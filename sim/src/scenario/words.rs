//! Steps in words for the event log: node lists as `[0,1,4]`, link profiles and a system's
//! expectations as `key=value` fields, never a debug form.

use serde::Serialize;

use crate::net::{LinkProfile, NodeIndex};

/// `[0,1,4]`.
pub fn nodes(list: &[NodeIndex]) -> String {
    let names: Vec<String> = list.iter().map(|n| n.to_string()).collect();
    format!("[{}]", names.join(","))
}

/// `latency 500us+2000us loss 0ppm duplicate 0ppm`: the fixed part and the mean of the
/// exponential part.
pub fn link(p: &LinkProfile) -> String {
    format!(
        "latency {}us+{}us loss {}ppm duplicate {}ppm",
        p.latency_min_us, p.latency_mean_us, p.loss_ppm, p.duplicate_ppm
    )
}

/// A serialisable value as a scenario file would give it, in words: a table's `kind` first,
/// then its `node` as `n2`, then `key=value` for the rest (`stream n2 exists=true name=S`);
/// strings bare, lists as `[a,b]`, a nested table in parentheses.
pub fn fields<T: Serialize>(value: &T) -> String {
    match toml::Value::try_from(value) {
        Ok(v) => words(&v),
        Err(_) => "(not representable)".to_string(),
    }
}

fn words(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(words).collect();
            format!("[{}]", items.join(","))
        }
        toml::Value::Table(t) => {
            let kind = t.get("kind").map(words);
            let node = t.get("node").and_then(|n| n.as_integer()).map(|n| format!("n{n}"));
            let has_node = node.is_some();
            let named = |k: &str| k == "kind" || (k == "node" && has_node);
            let rest = t.iter().filter(|(k, _)| !named(k)).map(|(k, v)| match v {
                toml::Value::Table(_) => format!("{k}=({})", words(v)),
                _ => format!("{k}={}", words(v)),
            });
            kind.into_iter().chain(node).chain(rest).collect::<Vec<_>>().join(" ")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    #[serde(tag = "kind", rename_all = "kebab-case")]
    enum Check {
        Stream { node: u32, name: String, subjects: Vec<String>, at: Option<u64> },
    }

    #[test]
    fn expectations_read_as_their_fields() {
        let check = Check::Stream { node: 2, name: "S".into(), subjects: vec!["s.>".into(), "t.>".into()], at: None };
        assert_eq!(fields(&check), "stream n2 name=S subjects=[s.>,t.>]");
        assert_eq!(nodes(&[2, 3, 4]), "[2,3,4]");
    }
}
