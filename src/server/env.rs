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
pub fn forked_rng(env: &mut ServerEnv<'_>) -> ForkedRng {
    ForkedRng { seed: env.rng().next_u64(), rng: None }
}

/// A ChaCha8 seeded from `seed`, set up on its first draw: the tick forks one for every group,
/// and most ticks of most groups draw nothing. The seed is drawn either way, so the run's RNG
/// moves on exactly as if the generator had been built at once, and it yields the same values.
pub struct ForkedRng {
    seed: u64,
    rng: Option<ChaCha8Rng>,
}

impl ForkedRng {
    fn rng(&mut self) -> &mut ChaCha8Rng {
        self.rng.get_or_insert_with(|| ChaCha8Rng::seed_from_u64(self.seed))
    }
}

impl RngCore for ForkedRng {
    fn next_u32(&mut self) -> u32 {
        self.rng().next_u32()
    }

    fn next_u64(&mut self) -> u64 {
        self.rng().next_u64()
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.rng().fill_bytes(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand::Error> {
        self.rng().try_fill_bytes(dest)
    }
}
