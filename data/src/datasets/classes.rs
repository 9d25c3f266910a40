//! New tasks from the classes of a dataset: keep some classes, merge others into one (the
//! chapter's "Tigger / Misty / neither"), and draw a fixed number of images per class.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use super::{Dataset, Sample, SampleU8, Subset};
use crate::error::DataError;
use crate::rng::Rng;

/// One class of the new task and the dataset classes it is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassGroup {
    /// The new class's name.
    pub name: String,
    /// Dataset classes it takes; empty means every class no other group names.
    pub members: Vec<String>,
}

/// The classes of a new task, in label order, written `cat,dog,neither=*` or
/// `vehicle=airplane+automobile+ship+truck,animal=*`: a bare name keeps that class, `name=a+b`
/// merges classes, `name=*` takes every class the other groups leave. Classes no group takes are
/// dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassGroups(pub Vec<ClassGroup>);

impl FromStr for ClassGroups {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut groups = Vec::new();
        for part in text.split(',').map(str::trim) {
            let (name, members) = match part.split_once('=') {
                None => (part, vec![part.to_string()]),
                Some((name, "*")) => (name.trim(), Vec::new()),
                Some((name, members)) => (
                    name.trim(),
                    members.split('+').map(|m| m.trim().to_string()).collect(),
                ),
            };
            if name.is_empty() || members.iter().any(String::is_empty) {
                return Err(format!(
                    "'{text}': every class needs a name and its members (e.g. cat,dog,neither=*)"
                ));
            }
            if groups.iter().any(|g: &ClassGroup| g.name == name) {
                return Err(format!("'{text}' names the class '{name}' twice"));
            }
            groups.push(ClassGroup {
                name: name.to_string(),
                members,
            });
        }
        if groups.iter().filter(|g| g.members.is_empty()).count() > 1 {
            return Err(format!("'{text}': only one class can take the rest (=*)"));
        }
        Ok(Self(groups))
    }
}

impl fmt::Display for ClassGroups {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, group) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if group.members.is_empty() {
                write!(f, "{}=*", group.name)?;
            } else if group.members == [group.name.clone()] {
                f.write_str(&group.name)?;
            } else {
                write!(f, "{}={}", group.name, group.members.join("+"))?;
            }
        }
        Ok(())
    }
}

/// The samples of a dataset whose class a group takes, labelled by their group.
pub struct Relabeled {
    inner: Arc<dyn Dataset>,
    /// Indices into `inner` of the kept samples, in its order.
    indices: Vec<usize>,
    /// The group of each class of `inner`, `None` for dropped classes.
    group_of: Vec<Option<usize>>,
    names: Vec<String>,
}

impl Relabeled {
    /// `inner` seen through `groups`. Fails when a group names a class `inner` does not have,
    /// when a class is taken twice, or when a group ends up empty.
    pub fn new(inner: Arc<dyn Dataset>, groups: &ClassGroups) -> Result<Self, String> {
        let classes = inner.classes();
        let mut group_of: Vec<Option<usize>> = vec![None; classes.len()];
        for (g, group) in groups.0.iter().enumerate() {
            for member in &group.members {
                let class = classes.iter().position(|c| c == member).ok_or_else(|| {
                    format!(
                        "no class '{member}' (the dataset has {})",
                        classes.join(", ")
                    )
                })?;
                if let Some(other) = group_of[class] {
                    return Err(format!(
                        "class '{member}' is in both '{}' and '{}'",
                        groups.0[other].name, group.name
                    ));
                }
                group_of[class] = Some(g);
            }
        }
        if let Some(rest) = groups.0.iter().position(|g| g.members.is_empty()) {
            for slot in group_of.iter_mut().filter(|slot| slot.is_none()) {
                *slot = Some(rest);
            }
        }
        if let Some(empty) = (0..groups.0.len()).find(|g| !group_of.contains(&Some(*g))) {
            return Err(format!(
                "class '{}' takes no class of the dataset",
                groups.0[empty].name
            ));
        }
        let indices = (0..inner.len())
            .filter(|&i| group_of[inner.label(i)].is_some())
            .collect();
        Ok(Self {
            inner,
            indices,
            group_of,
            names: groups.0.iter().map(|g| g.name.clone()).collect(),
        })
    }
}

impl Dataset for Relabeled {
    fn len(&self) -> usize {
        self.indices.len()
    }

    fn label(&self, index: usize) -> usize {
        self.group_of[self.inner.label(self.indices[index])].expect("kept samples have a group")
    }

    fn get(&self, index: usize) -> Result<Sample, DataError> {
        let sample = self.inner.get(self.indices[index])?;
        Ok(Sample {
            label: self.group_of[sample.label].expect("kept samples have a group"),
            ..sample
        })
    }

    fn get_u8(&self, index: usize) -> Option<Result<SampleU8, DataError>> {
        let sample = self.inner.get_u8(self.indices[index])?;
        Some(sample.map(|sample| SampleU8 {
            label: self.group_of[sample.label].expect("kept samples have a group"),
            ..sample
        }))
    }

    fn classes(&self) -> &[String] {
        &self.names
    }
}

/// At most `count` samples of each class, drawn by `seed` (a class with fewer keeps all of its
/// samples); the subset keeps the dataset's order. Merged classes draw from all their members,
/// so `neither` gets `count` images spread over the classes it takes.
pub fn per_class(dataset: Arc<dyn Dataset>, count: usize, seed: u64) -> Subset {
    let order = Rng::new(seed ^ 0xc1a5).permutation(dataset.len());
    let mut taken = vec![0; dataset.classes().len()];
    let mut indices: Vec<usize> = order
        .into_iter()
        .filter(|&i| {
            let class = dataset.label(i);
            taken[class] += 1;
            taken[class] <= count
        })
        .collect();
    indices.sort_unstable();
    Subset::new(dataset, indices)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datasets::class_counts;
    use crate::image::Image;

    /// Ten samples of each of the classes a, b, c, d; pixel value = index.
    struct Toy(Vec<String>);

    impl Dataset for Toy {
        fn len(&self) -> usize {
            40
        }
        fn label(&self, index: usize) -> usize {
            index % 4
        }
        fn get(&self, index: usize) -> Result<Sample, DataError> {
            Ok(Sample {
                image: Image {
                    channels: 1,
                    height: 1,
                    width: 1,
                    data: vec![index as f32],
                },
                label: index % 4,
            })
        }
        fn classes(&self) -> &[String] {
            &self.0
        }
    }

    fn toy() -> Arc<dyn Dataset> {
        Arc::new(Toy(["a", "b", "c", "d"].map(String::from).to_vec()))
    }

    #[test]
    fn groups_parse_and_print_back() {
        for text in ["cat,dog,neither=*", "v=a+b,c"] {
            assert_eq!(text.parse::<ClassGroups>().unwrap().to_string(), text);
        }
        for bad in ["cat,cat", "x=", "a=*,b=*", ",a"] {
            assert!(bad.parse::<ClassGroups>().is_err(), "{bad}");
        }
    }

    #[test]
    fn relabeled_keeps_merges_and_drops_classes() {
        let groups: ClassGroups = "c,ab=a+b".parse().unwrap();
        let relabeled = Relabeled::new(toy(), &groups).unwrap();
        assert_eq!(relabeled.classes(), ["c", "ab"]);
        assert_eq!(class_counts(&relabeled), [10, 20]);
        for i in 0..relabeled.len() {
            let sample = relabeled.get(i).unwrap();
            let source_class = sample.image.data[0] as usize % 4;
            assert_eq!(sample.label, relabeled.label(i));
            assert_eq!(sample.label, if source_class == 2 { 0 } else { 1 });
        }
        let rest = Relabeled::new(toy(), &"b,rest=*".parse().unwrap()).unwrap();
        assert_eq!(class_counts(&rest), [10, 30]);
    }

    #[test]
    fn relabeled_names_what_is_wrong() {
        let error = |text: &str| Relabeled::new(toy(), &text.parse().unwrap()).err().unwrap();
        assert!(error("a,zebra").contains("no class 'zebra' (the dataset has a, b, c, d)"));
        assert!(error("a,x=a+b").contains("'a' is in both"));
        assert!(error("a,b,c,d,rest=*").contains("'rest' takes no class"));
    }

    #[test]
    fn per_class_draws_by_seed_and_balances() {
        let merged: Arc<dyn Dataset> =
            Arc::new(Relabeled::new(toy(), &"a,rest=*".parse().unwrap()).unwrap());
        let drawn = per_class(Arc::clone(&merged), 7, 3);
        assert_eq!(class_counts(&drawn), [7, 7]);
        assert!(drawn.indices().windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            per_class(Arc::clone(&merged), 7, 3).indices(),
            drawn.indices()
        );
        assert_ne!(
            per_class(Arc::clone(&merged), 7, 4).indices(),
            drawn.indices()
        );
        assert_eq!(class_counts(&per_class(merged, 15, 0)), [10, 15]);
    }
}
