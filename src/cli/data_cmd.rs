//! `data`: writes a dataset to CSV.

use anyhow::Result;

use super::source::{Source, positive, write_points};

#[derive(clap::Args, Debug)]
pub struct DataArgs {
    /// A built-in dataset name or a CSV file.
    #[arg(long)]
    pub dataset: String,
    /// Number of points (built-ins; a CSV is copied whole).
    #[arg(long, default_value_t = 2000)]
    pub n: usize,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output CSV (`x,y[,label]`), written atomically.
    #[arg(long)]
    pub out: String,
}

pub fn run(args: &DataArgs) -> Result<()> {
    let source = Source::resolve(&args.dataset, positive("n", args.n)?, args.seed)?;
    let points = source.normalization.invert_all(&source.points);
    write_points(&args.out, &points, source.labels.as_deref())?;
    eprintln!(
        "wrote {} points of {} to {}",
        points.len(),
        source.label,
        args.out
    );
    Ok(())
}
