//! [`DataRecipe`]: how a training (or original) set was made, small enough to store in a
//! checkpoint or a sweep row, exact enough to rebuild the same images.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::gmm::GmmSpec;
use crate::mnist::Resize;
use crate::source::ReadOptions;
use crate::{DataError, ImageSet};

/// How to rebuild a set of images exactly.
///
/// In TOML (`kind` picks the variant):
/// ```toml
/// kind = "gmm"
/// n = 100
/// seed = 3
/// spec = { px = 8, components = [ { mean = 0.5, std = 0.1 } ] }
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum DataRecipe {
    /// `n` samples of a Gaussian mixture with `seed` ([`GmmSpec::sample`]).
    Gmm { spec: GmmSpec, n: usize, seed: u64 },
    /// The images at `indices` of an MNIST IDX file, resized.
    Mnist {
        images: PathBuf,
        resize: Resize,
        indices: Vec<usize>,
    },
    /// A `.npy` (or IDX) file, all rows or the rows at `indices` (recipes written before
    /// [`DataRecipe::Images`]; still rebuilt).
    Npy {
        path: PathBuf,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        indices: Option<Vec<usize>>,
    },
    /// Your own images: a folder of PNG / JPEG files, a `.npz`, `.npy` or IDX file read by
    /// [`crate::source::read_source`] with `read`, the images at `indices` (of the source in its
    /// reading order). `hash` is the source's content hash when the recipe was made: a source
    /// that no longer has it is refused ([`DataError::Changed`]), never silently rebuilt.
    ///
    /// In TOML: `kind = "images"`, `path = "/abs/faces"`, `hash = "sha256:..."`,
    /// `indices = [...]`, `read = { fit = "crop", px = 32 }`.
    Images {
        path: PathBuf,
        #[serde(default)]
        read: ReadOptions,
        hash: String,
        indices: Vec<usize>,
    },
}

impl DataRecipe {
    /// A recipe for a seeded MNIST subset of size `n` (the indices are drawn now, by
    /// [`crate::mnist::subset_indices`], so the recipe no longer depends on the seed's meaning).
    pub fn mnist_subset(
        images: PathBuf,
        resize: Resize,
        n: usize,
        seed: u64,
    ) -> Result<Self, DataError> {
        let total = crate::mnist::load_images(&images)?.n;
        let indices = crate::mnist::subset_indices(total, n, seed).map_err(|e| match e {
            DataError::TooFew {
                requested,
                available,
                ..
            } => DataError::TooFew {
                what: images.display().to_string(),
                requested,
                available,
            },
            e => e,
        })?;
        Ok(DataRecipe::Mnist {
            images,
            resize,
            indices,
        })
    }

    /// A recipe for `n` images of a source drawn with `seed` (all of them, in reading order,
    /// when `n` is `None`), with the source's content hash. `path` is made absolute.
    pub fn images_subset(
        path: &std::path::Path,
        read: ReadOptions,
        n: Option<usize>,
        seed: u64,
    ) -> Result<Self, DataError> {
        let path = std::path::absolute(path).map_err(|e| DataError::read(path, e))?;
        let src = crate::source::read_source(&path, &read)?;
        let indices = match n {
            None => (0..src.set.n).collect(),
            Some(n) => crate::mnist::subset_indices(src.set.n, n, seed).map_err(|e| match e {
                DataError::TooFew {
                    requested,
                    available,
                    ..
                } => DataError::TooFew {
                    what: path.display().to_string(),
                    requested,
                    available,
                },
                e => e,
            })?,
        };
        Ok(DataRecipe::Images {
            path,
            read,
            hash: src.hash,
            indices,
        })
    }

    /// For a recipe that takes rows of a file (MNIST, `.npy`, images): every image of the file
    /// (resized or fitted as the recipe does; an images source checked against its hash) and
    /// the rows the recipe takes. `None` for a mixture, which has no file.
    pub fn pool(&self) -> Result<Option<(ImageSet, Vec<usize>)>, DataError> {
        Ok(match self {
            DataRecipe::Gmm { .. } => None,
            DataRecipe::Mnist {
                images,
                resize,
                indices,
            } => Some((
                resize.apply(&crate::mnist::load_images(images)?)?,
                indices.clone(),
            )),
            DataRecipe::Npy { path, indices } => {
                let all = crate::idx::read_images_any(path)?;
                let ix = indices.clone().unwrap_or_else(|| (0..all.n).collect());
                Some((all, ix))
            }
            DataRecipe::Images {
                path,
                read,
                hash,
                indices,
            } => Some((checked_source(path, read, hash)?, indices.clone())),
        })
    }

    /// The recipe with every file named so that it rebuilds the same set from any working
    /// folder: a `.npy` path becomes absolute (relative paths are taken relative to the working
    /// folder now), an MNIST file goes through [`crate::mnist::locate`] (the shipped subset
    /// becomes [`crate::mnist::SHIPPED`], another file its absolute path).
    pub fn with_absolute_paths(self) -> Result<Self, DataError> {
        Ok(match self {
            DataRecipe::Npy { path, indices } => DataRecipe::Npy {
                path: std::path::absolute(&path).map_err(|e| DataError::read(&path, e))?,
                indices,
            },
            DataRecipe::Mnist {
                images,
                resize,
                indices,
            } => DataRecipe::Mnist {
                images: crate::mnist::locate(Some(&images), None)?,
                resize,
                indices,
            },
            DataRecipe::Images {
                path,
                read,
                hash,
                indices,
            } => DataRecipe::Images {
                path: std::path::absolute(&path).map_err(|e| DataError::read(&path, e))?,
                read,
                hash,
                indices,
            },
            r @ DataRecipe::Gmm { .. } => r,
        })
    }

    /// Number of images the recipe makes.
    pub fn len(&self) -> Option<usize> {
        match self {
            DataRecipe::Gmm { n, .. } => Some(*n),
            DataRecipe::Mnist { indices, .. } => Some(indices.len()),
            DataRecipe::Npy { indices, .. } => indices.as_ref().map(Vec::len),
            DataRecipe::Images { indices, .. } => Some(indices.len()),
        }
    }

    /// True if the recipe makes no images (never valid to build).
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// Builds the images.
    pub fn build(&self) -> Result<ImageSet, DataError> {
        match self {
            DataRecipe::Gmm { spec, n, seed } => Ok(spec.sample(*n, *seed)?.0),
            DataRecipe::Mnist {
                images,
                resize,
                indices,
            } => {
                let all = crate::mnist::load_images(images)?;
                let what = images.display().to_string();
                let sub = select_checked(&all, indices, &what)?;
                resize.apply(&sub)
            }
            DataRecipe::Npy { path, indices } => {
                let all = crate::idx::read_images_any(path)?;
                match indices {
                    None => Ok(all),
                    Some(ix) => select_checked(&all, ix, &path.display().to_string()),
                }
            }
            DataRecipe::Images {
                path,
                read,
                hash,
                indices,
            } => {
                let all = checked_source(path, read, hash)?;
                select_checked(&all, indices, &path.display().to_string())
            }
        }
    }
}

/// The images of a source, refused when its content hash is not `hash`.
fn checked_source(
    path: &std::path::Path,
    read: &ReadOptions,
    hash: &str,
) -> Result<ImageSet, DataError> {
    let src = crate::source::read_source(path, read)?;
    if src.hash != hash {
        return Err(DataError::Changed {
            path: path.to_path_buf(),
            recorded: hash.to_string(),
            now: src.hash,
        });
    }
    Ok(src.set)
}

fn select_checked(set: &ImageSet, indices: &[usize], what: &str) -> Result<ImageSet, DataError> {
    if indices.is_empty() {
        return Err(DataError::invalid(
            format!("indices of {what}"),
            "no indices (empty set)",
        ));
    }
    if let Some(&bad) = indices.iter().find(|&&i| i >= set.n) {
        return Err(DataError::IndexOutOfRange {
            what: what.to_string(),
            index: bad,
            available: set.n,
        });
    }
    Ok(set.select(indices))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gmm_recipe_rebuilds_and_round_trips_toml() {
        let r = DataRecipe::Gmm {
            spec: GmmSpec::centred(8, 3, 0.5, 0.1, 0.1).unwrap(),
            n: 50,
            seed: 9,
        };
        let text = toml::to_string(&r).unwrap();
        assert!(text.contains("kind = \"gmm\""), "{text}");
        let back: DataRecipe = toml::from_str(&text).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.build().unwrap(), r.build().unwrap());
        assert_eq!(r.len(), Some(50));
    }

    #[test]
    fn npy_recipe_selects_rows_and_checks_range() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.npy");
        let set = ImageSet::new(4, 1, 1, 2, (0..8).map(|v| v as f32).collect());
        crate::npy::write_npy(&f, &set).unwrap();
        let r = DataRecipe::Npy {
            path: f.clone(),
            indices: Some(vec![3, 0]),
        };
        assert_eq!(r.build().unwrap().data, vec![6.0, 7.0, 0.0, 1.0]);
        let text = toml::to_string(&r).unwrap();
        assert_eq!(toml::from_str::<DataRecipe>(&text).unwrap(), r);
        let bad = DataRecipe::Npy {
            path: f,
            indices: Some(vec![4]),
        };
        assert!(matches!(
            bad.build().unwrap_err(),
            DataError::IndexOutOfRange { index: 4, .. }
        ));
    }

    #[test]
    fn absolute_paths_rebuild_from_any_folder() {
        let r = DataRecipe::Npy {
            path: "a/b.npy".into(),
            indices: None,
        }
        .with_absolute_paths()
        .unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(
            r,
            DataRecipe::Npy {
                path: cwd.join("a/b.npy"),
                indices: None
            }
        );
        // The repository path of the shipped subset becomes the shipped name, read from the
        // embedded bytes: the same images as the file.
        let old = DataRecipe::Mnist {
            images: crate::mnist::SHIPPED_IMAGES.into(),
            resize: Resize::Bilinear(8),
            indices: vec![5, 0, 9999],
        };
        let new = old.clone().with_absolute_paths().unwrap();
        assert_eq!(
            new,
            DataRecipe::Mnist {
                images: crate::mnist::SHIPPED.into(),
                resize: Resize::Bilinear(8),
                indices: vec![5, 0, 9999],
            }
        );
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(crate::mnist::SHIPPED_IMAGES);
        let from_file = DataRecipe::Mnist {
            images: file,
            resize: Resize::Bilinear(8),
            indices: vec![5, 0, 9999],
        };
        assert_eq!(new.build().unwrap(), from_file.build().unwrap());
        assert_eq!(new.build().unwrap().n, 3);
    }

    #[test]
    fn mnist_recipe_toml_form() {
        let r: DataRecipe = toml::from_str(
            "kind = \"mnist\"\nimages = \"m.gz\"\nresize = { bilinear = 16 }\nindices = [1, 2]\n",
        )
        .unwrap();
        assert_eq!(
            r,
            DataRecipe::Mnist {
                images: "m.gz".into(),
                resize: Resize::Bilinear(16),
                indices: vec![1, 2]
            }
        );
        let r: DataRecipe = toml::from_str(
            "kind = \"mnist\"\nimages = \"m.gz\"\nresize = \"pad32\"\nindices = [0]\n",
        )
        .unwrap();
        assert!(matches!(
            r,
            DataRecipe::Mnist {
                resize: Resize::Pad32,
                ..
            }
        ));
    }

    #[test]
    fn images_recipe_rebuilds_and_refuses_a_changed_folder() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("faces");
        let set = ImageSet::new(
            6,
            3,
            8,
            8,
            (0..6 * 192).map(|i| (i % 256) as f32 / 255.0).collect(),
        );
        crate::export::write_png_dir(&d, &set).unwrap();
        let r = DataRecipe::images_subset(&d, ReadOptions::default(), Some(4), 3).unwrap();
        let DataRecipe::Images { indices, hash, .. } = &r else {
            panic!("{r:?}")
        };
        assert_eq!(indices, &crate::mnist::subset_indices(6, 4, 3).unwrap());
        assert!(hash.starts_with("sha256:"));
        assert_eq!(r.build().unwrap(), set.select(indices));
        let text = toml::to_string(&r).unwrap();
        assert!(text.contains("kind = \"images\""), "{text}");
        assert_eq!(toml::from_str::<DataRecipe>(&text).unwrap(), r);
        let (pool, used) = r.pool().unwrap().unwrap();
        assert_eq!((pool.n, used.len()), (6, 4));
        // Too many asked: names the folder and both numbers.
        let e = DataRecipe::images_subset(&d, ReadOptions::default(), Some(7), 3).unwrap_err();
        assert!(
            e.to_string().contains("faces") && e.to_string().contains('7'),
            "{e}"
        );
        // One changed pixel: refused with one line naming the folder.
        let mut img = image::open(d.join("00001.png")).unwrap().to_rgb8();
        img.get_pixel_mut(0, 0).0[0] ^= 1;
        img.save(d.join("00001.png")).unwrap();
        let e = r.build().unwrap_err().to_string();
        assert!(e.contains("faces") && e.contains("changed"), "{e}");
        assert!(!e.contains('\n'));
    }
}
