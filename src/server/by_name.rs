//! Lists put in group-name order, one item per name: what a server wants to run and to keep
//! on disk, rebuilt from every local asset whenever the assets change (thousands at a time in
//! a create burst).

/// `items` in the order of their names, and of the items given under one name only the last:
/// what a stable sort by name followed by a map by name would leave.
///
/// The sort moves (prefix, place) pairs, not the items, and compares the names' first eight
/// bytes as one integer before any whole name. Group names share a five-byte head (`S-R3-`),
/// so most pairs are told apart by the integer. Sorting the items by whole names moved and
/// compared strings a hundred instructions a pair.
pub fn last_by_name<T>(items: Vec<T>, name_of: impl Fn(&T) -> &str) -> Vec<T> {
    let count = u32::try_from(items.len()).expect("fewer than 2^32 items");
    let mut order: Vec<(u64, u32)> = items.iter().zip(0..count).map(|(item, at)| (prefix(name_of(item)), at)).collect();
    // Unstable, yet in one order only: every pair differs in its place.
    order.sort_unstable_by(|a, b| {
        let name = |at: u32| name_of(&items[at as usize]);
        a.0.cmp(&b.0).then_with(|| name(a.1).cmp(name(b.1))).then(a.1.cmp(&b.1))
    });
    // The last of each run of one name stays.
    let mut keep = vec![false; items.len()];
    for (at, &(_, place)) in order.iter().enumerate() {
        let next_same = order
            .get(at + 1)
            .is_some_and(|&(_, next)| name_of(&items[next as usize]) == name_of(&items[place as usize]));
        keep[place as usize] = !next_same;
    }
    let mut slots: Vec<Option<T>> = items.into_iter().map(Some).collect();
    order
        .iter()
        .filter(|&&(_, place)| keep[place as usize])
        .map(|&(_, place)| slots[place as usize].take().expect("each place is taken once"))
        .collect()
}

/// The first eight bytes of `name`, big-endian, zero-padded: ordered as the names are, up to
/// ties between names that share their first eight bytes.
fn prefix(name: &str) -> u64 {
    let mut head = [0u8; 8];
    let bytes = &name.as_bytes()[..name.len().min(8)];
    head[..bytes.len()].copy_from_slice(bytes);
    u64::from_be_bytes(head)
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// The definition: a stable sort by name, then the last of each name.
    fn by_definition(mut items: Vec<(String, usize)>) -> Vec<(String, usize)> {
        items.sort_by(|a, b| a.0.cmp(&b.0));
        let mut kept: Vec<(String, usize)> = Vec::new();
        for item in items {
            if kept.last().is_some_and(|last| last.0 == item.0) {
                kept.pop();
            }
            kept.push(item);
        }
        kept
    }

    #[test]
    fn names_in_order_and_the_last_of_a_name_stays() {
        // Short names, names sharing eight bytes or more, a NUL byte (the padding's value),
        // and repeated names.
        let alphabet = ["", "\0", "a", "b", "S-R3-", "S-R3-ab", "S-R3-abc", "S-R3-abcd", "S-R3-abcde", "C-R1-"];
        let mut rng = ChaCha8Rng::seed_from_u64(16);
        for round in 0..300 {
            let count = rng.gen_range(0..40);
            let items: Vec<(String, usize)> = (0..count)
                .map(|at| {
                    let parts = rng.gen_range(1..4);
                    let name: String = (0..parts).map(|_| alphabet[rng.gen_range(0..alphabet.len())]).collect();
                    (name, at)
                })
                .collect();
            let want = by_definition(items.clone());
            assert_eq!(last_by_name(items, |item| item.0.as_str()), want, "round {round}");
        }
    }

    #[test]
    fn prefixes_order_as_names_do() {
        let names = ["", "\0", "\0\0", "a", "a\0", "ab", "abcdefgh", "abcdefgh\0", "abcdefghi", "b"];
        for a in names {
            for b in names {
                if a < b {
                    assert!(prefix(a) <= prefix(b), "{a:?} < {b:?}");
                }
            }
        }
    }
}
