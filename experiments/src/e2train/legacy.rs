//! Reading the E2-Train configurations of records written before the learning-rate schedule
//! became tensor-core's: their `lr` was `{base, milestones, gamma, warmup: [iterations, lr]}`
//! and the base rate overrode `sgd.lr`. Such a schedule reads as the step decay of `sgd.lr` it
//! described, with `sgd.lr` set to its base, so the committed records stay readable.

use e2_train::E2TrainConfig;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

pub(super) fn config<'de, D: Deserializer<'de>>(d: D) -> Result<E2TrainConfig, D::Error> {
    let mut value = Value::deserialize(d)?;
    upgrade(&mut value).map_err(D::Error::custom)?;
    serde_json::from_value(value).map_err(D::Error::custom)
}

/// Rewrites an old `lr` object in place; anything else is left for serde to judge.
fn upgrade(config: &mut Value) -> Result<(), String> {
    let Some(lr) = config.get("lr").and_then(Value::as_object) else {
        return Ok(());
    };
    let Some(base) = lr.get("base").cloned() else {
        return Ok(());
    };
    let warmup = match lr.get("warmup") {
        None | Some(Value::Null) => Value::Null,
        Some(Value::Array(w)) if w.len() == 2 => json!({"iterations": w[0], "lr": w[1]}),
        Some(other) => return Err(format!("unreadable learning-rate warm-up {other}")),
    };
    let schedule = json!({
        "decay": {"kind": "step", "milestones": lr.get("milestones"), "gamma": lr.get("gamma")},
        "warmup": warmup,
    });
    config["lr"] = schedule;
    match config.get_mut("sgd").and_then(Value::as_object_mut) {
        Some(sgd) => {
            sgd.insert("lr".into(), base);
            Ok(())
        }
        None => Err("an E2-Train configuration without `sgd`".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The configuration of a committed `e2train-mnist` record, in the earlier layout.
    #[test]
    fn old_schedules_read_as_step_decays_of_the_base_rate() {
        let mut old = serde_json::to_value(E2TrainConfig::quick_cpu_resnet20()).unwrap();
        old["lr"] = json!({"base": 0.1, "milestones": [800, 1000], "gamma": 0.1, "warmup": null});
        let c: E2TrainConfig = config(old.clone()).unwrap();
        assert_eq!(c, E2TrainConfig::quick_cpu_resnet20());
        old["lr"]["warmup"] = json!([400, 0.01]);
        old["lr"]["base"] = json!(0.2);
        let c: E2TrainConfig = config(old).unwrap();
        assert_eq!(c.sgd.lr, 0.2);
        let w = c.lr.warmup.unwrap();
        assert_eq!((w.iterations, w.lr), (400, 0.01));
        let new = serde_json::to_value(E2TrainConfig::quick_cpu_resnet20()).unwrap();
        assert_eq!(
            config(new).unwrap(),
            E2TrainConfig::quick_cpu_resnet20(),
            "the current shape reads as itself"
        );
    }
}
