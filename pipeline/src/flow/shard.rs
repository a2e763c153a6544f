//! Which part of the work a run takes: shard `index` of `count`.

use std::fmt;
use std::str::FromStr;

/// Shard `index` of `count` (0-based). N tasks with indexes 0..N split a source's rows with no
/// overlap and no coordination: each takes the rows whose key hashes to its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

/// Errors of reading a shard.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShardError {
    /// The text is not `index/count`.
    #[error("shard {0:?} is not index/count, e.g. 0/4")]
    Syntax(String),
    /// The index is not below the count, or the count is zero.
    #[error(
        "shard {index}/{count} is out of range: the index must be below the count, which must be at least 1"
    )]
    Range {
        /// The index given.
        index: u32,
        /// The count given.
        count: u32,
    },
    /// Only one of Cloud Run's two task variables is set, or one is not a number.
    #[error("{0}")]
    Environment(String),
}

impl Shard {
    /// The whole source: shard 0 of 1.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Shard `index` of `count`.
    ///
    /// # Errors
    /// [`ShardError::Range`] unless `index < count`.
    pub fn new(index: u32, count: u32) -> Result<Self, ShardError> {
        if count == 0 || index >= count {
            return Err(ShardError::Range { index, count });
        }
        Ok(Self { index, count })
    }

    /// The shard Cloud Run Jobs assigns this task (`CLOUD_RUN_TASK_INDEX` of
    /// `CLOUD_RUN_TASK_COUNT`), read through `var`; `None` when neither is set.
    ///
    /// # Errors
    /// [`ShardError::Environment`] when only one is set or either is not a number.
    pub fn from_env_with(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ShardError> {
        const INDEX: &str = "CLOUD_RUN_TASK_INDEX";
        const COUNT: &str = "CLOUD_RUN_TASK_COUNT";
        let number = |name: &str, text: String| {
            text.trim().parse::<u32>().map_err(|_| {
                ShardError::Environment(format!("{name}={text:?} is not a task number"))
            })
        };
        match (var(INDEX), var(COUNT)) {
            (None, None) => Ok(None),
            (Some(index), Some(count)) => {
                Self::new(number(INDEX, index)?, number(COUNT, count)?).map(Some)
            }
            _ => Err(ShardError::Environment(format!(
                "set both {INDEX} and {COUNT}, or neither"
            ))),
        }
    }

    /// The shard of this process: Cloud Run's task variables, or [`Shard::ALL`].
    ///
    /// # Errors
    /// As [`Shard::from_env_with`].
    pub fn from_env() -> Result<Self, ShardError> {
        Ok(Self::from_env_with(|name| std::env::var(name).ok())?.unwrap_or(Self::ALL))
    }

    /// This shard's index.
    pub fn index(self) -> u32 {
        self.index
    }

    /// How many shards there are.
    pub fn count(self) -> u32 {
        self.count
    }

    /// Whether this shard is the whole source.
    pub fn is_all(self) -> bool {
        self.count == 1
    }

    /// Whether the element whose key is `key` belongs to this shard, by the same hash the SQL
    /// sources use (`ABS(MOD(FARM_FINGERPRINT(key), count)) = index`), for sources that are not
    /// SQL (files to import).
    pub fn takes(self, key: &str) -> bool {
        let fingerprint = farmhash::fingerprint64(key.as_bytes()).cast_signed();
        (fingerprint % i64::from(self.count)).unsigned_abs() == u64::from(self.index)
    }
}

impl Default for Shard {
    fn default() -> Self {
        Self::ALL
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let syntax = || ShardError::Syntax(text.to_owned());
        let (index, count) = text.split_once('/').ok_or_else(syntax)?;
        let index = index.trim().parse().map_err(|_| syntax())?;
        let count = count.trim().parse().map_err(|_| syntax())?;
        Self::new(index, count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_index_of_count() {
        assert_eq!("2/4".parse::<Shard>().unwrap(), Shard::new(2, 4).unwrap());
        assert_eq!(Shard::new(2, 4).unwrap().to_string(), "2/4");
        assert_eq!(
            "4/4".parse::<Shard>(),
            Err(ShardError::Range { index: 4, count: 4 })
        );
        assert!(
            "0/0"
                .parse::<Shard>()
                .unwrap_err()
                .to_string()
                .contains("at least 1")
        );
        assert!(matches!("x".parse::<Shard>(), Err(ShardError::Syntax(_))));
        assert!(matches!("1/x".parse::<Shard>(), Err(ShardError::Syntax(_))));
    }

    #[test]
    fn takes_each_key_in_exactly_one_shard() {
        let keys: Vec<String> = (0..300)
            .map(|i| format!("export/part-{i}.ndjson"))
            .collect();
        let mut taken = vec![0; keys.len()];
        for index in 0..4 {
            let shard = Shard::new(index, 4).unwrap();
            let mine = keys.iter().filter(|k| shard.takes(k)).count();
            assert!(mine > 30, "shard {shard} took only {mine} of 300 keys");
            for (i, key) in keys.iter().enumerate() {
                taken[i] += usize::from(shard.takes(key));
            }
        }
        assert!(taken.iter().all(|&n| n == 1));
        assert!(keys.iter().all(|k| Shard::ALL.takes(k)));
        // BigQuery: ABS(MOD(FARM_FINGERPRINT('alphabet'), 5)) = 3 (the fingerprint is
        // -2427165924636348523).
        assert!(Shard::new(3, 5).unwrap().takes("alphabet"));
    }

    #[test]
    fn reads_cloud_run_task_variables() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(Shard::from_env_with(env(&[])).unwrap(), None);
        assert_eq!(
            Shard::from_env_with(env(&[
                ("CLOUD_RUN_TASK_INDEX", "3"),
                ("CLOUD_RUN_TASK_COUNT", "5")
            ]))
            .unwrap(),
            Some(Shard::new(3, 5).unwrap())
        );
        let err = Shard::from_env_with(env(&[("CLOUD_RUN_TASK_INDEX", "3")])).unwrap_err();
        assert!(err.to_string().contains("set both"), "{err}");
        let err = Shard::from_env_with(env(&[
            ("CLOUD_RUN_TASK_INDEX", "a"),
            ("CLOUD_RUN_TASK_COUNT", "5"),
        ]))
        .unwrap_err();
        assert!(
            err.to_string().contains("CLOUD_RUN_TASK_INDEX=\"a\""),
            "{err}"
        );
    }
}
