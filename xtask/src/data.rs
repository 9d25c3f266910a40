//! `cargo xtask data fetch|pca`.

use std::error::Error;
use std::path::PathBuf;

use clap::Subcommand;
use trainer::data::datasets::fetch::fetch;
use trainer::data::datasets::idx::Split;
use trainer::data::datasets::source::DatasetSource;
use trainer::data::transforms::Pca;

#[derive(Subcommand)]
pub enum DataCommand {
    /// Download MNIST or CIFAR-10 (binary) from the canonical hosts, checking SHA-256.
    Fetch {
        /// `mnist` or `cifar10`.
        dataset: String,
        /// Where to put the files (default: datasets/<dataset>).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Principal components of a dataset's RGB pixels, for AlexNet's PCA lighting.
    Pca {
        /// `cifar10`, or an image folder.
        dataset: String,
        /// Folder holding the downloaded files of `cifar10`.
        #[arg(long, default_value = "datasets/cifar10")]
        data_dir: PathBuf,
        /// Images to sample, evenly spaced.
        #[arg(long, default_value_t = 2000)]
        samples: usize,
        /// Also write the components as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

pub fn run(command: DataCommand) -> Result<(), Box<dyn Error>> {
    match command {
        DataCommand::Fetch { dataset, dir } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from("datasets").join(&dataset));
            let data_dir = fetch(&dataset, &dir)?;
            println!("{dataset} is ready: pass --data-dir {}", data_dir.display());
        }
        DataCommand::Pca {
            dataset,
            data_dir,
            samples,
            json,
        } => {
            let source = DatasetSource::parse(&dataset);
            let train = source.open(Split::Train, &data_dir)?;
            let pca = Pca::from_dataset(train.as_ref(), samples)?;
            println!("eigenvalues:  {:?}", pca.eigenvalues);
            for (channel, row) in ["R", "G", "B"].iter().zip(pca.eigenvectors) {
                println!("eigenvectors {channel}: {row:?}");
            }
            if let Some(path) = json {
                std::fs::write(&path, serde_json::to_string_pretty(&pca)?)?;
                println!("written to {}", path.display());
            }
        }
    }
    Ok(())
}
