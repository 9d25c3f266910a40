//! What the examples share: ending on an error, and a small stand-in image folder for running
//! them offline.

use std::path::Path;

/// Ends the example with the error's message and exit status 1 when `result` is one.
pub fn exit_on_error(result: Result<(), String>) {
    if let Err(error) = result {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

/// Writes a stand-in image folder into `root` (unless it is there): two classes of striped
/// images, `horizontal` and `vertical`, with stripes of random width, phase and colours.
pub fn stand_in_folder(root: &Path, per_class: usize) -> Result<(), String> {
    if root.is_dir() {
        return Ok(());
    }
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |bound: u32| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % u64::from(bound)) as u32
    };
    for class in ["horizontal", "vertical"] {
        let dir = root.join(class);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for index in 0..per_class {
            let (width, phase) = (2 + next(6), next(8));
            let colours = [[0u8; 3], [0; 3]].map(|_| [0, 1, 2].map(|_| next(256) as u8));
            let image = image::RgbImage::from_fn(48, 48, |x, y| {
                let along = if class == "horizontal" { y } else { x };
                image::Rgb(colours[(((along + phase) / width) % 2) as usize])
            });
            let file = dir.join(format!("{index}.png"));
            image
                .save(&file)
                .map_err(|e| format!("{}: {e}", file.display()))?;
        }
    }
    Ok(())
}
