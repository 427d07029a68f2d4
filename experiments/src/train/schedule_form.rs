//! How a [`TrainSpec`](super::TrainSpec) stores its [`LrSchedule`]: the decay alone
//! (`{"kind": "cosine"}`) when there is no warm-up, the shape every record, checkpoint and
//! dense-model cache key has always had, so resumes and caches stay valid; the whole schedule
//! otherwise. Both forms read back.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use tensor_core::{LrDecay, LrSchedule};

#[derive(Deserialize)]
#[serde(untagged)]
enum Form {
    Decay(LrDecay),
    Schedule(LrSchedule),
}

pub(super) fn serialize<S: Serializer>(schedule: &LrSchedule, s: S) -> Result<S::Ok, S::Error> {
    match schedule.warmup {
        None => schedule.decay.serialize(s),
        Some(_) => schedule.serialize(s),
    }
}

pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<LrSchedule, D::Error> {
    Ok(match Form::deserialize(d)? {
        Form::Decay(decay) => LrSchedule::new(decay),
        Form::Schedule(schedule) => schedule,
    })
}
