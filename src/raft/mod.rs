//! Placeholder: the NRG-style raft engine (see issue 3).
