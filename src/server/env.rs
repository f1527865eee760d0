//! The server's window on the simulator: its types as the engine sees them, and the [`Env`]
//! every handler of the server takes.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sim::{Env, NodeTypes};

use super::config::ServerConfig;
use super::observe::Observation;
use super::wire::{MetaOp, ServerMsg};

/// The server's messages, client operations, settings and observations.
pub struct ServerTypes;

impl NodeTypes for ServerTypes {
    type Msg = ServerMsg;
    type ClientOp = MetaOp;
    type Config = ServerConfig;
    type Observation<'a> = Observation<'a>;

    fn describe_message(msg: &ServerMsg) -> String {
        msg.describe()
    }
}

/// What every server handler acts through.
pub type ServerEnv<'a> = Env<'a, ServerTypes>;

/// A generator seeded from one draw of the run's RNG: the raft and meta cores take an RNG of
/// their own, while the env's is borrowed together with the disk.
pub fn forked_rng(env: &mut ServerEnv<'_>) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(env.rng().next_u64())
}
