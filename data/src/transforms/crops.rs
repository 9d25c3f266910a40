//! Multi-crop evaluation (the chapter's "10-crop"): the centre and four corners, of the image
//! and of its mirror, in torchvision's order.

use crate::image::Image;

/// Top-left, top-right, bottom-left, bottom-right and centre `size × size` crops.
pub fn five_crop(image: &Image, size: usize) -> [Image; 5] {
    assert!(
        size <= image.height && size <= image.width,
        "a {size}×{size} crop of a {}×{} image",
        image.height,
        image.width
    );
    let (bottom, right) = (image.height - size, image.width - size);
    [
        image.crop(0, 0, size, size),
        image.crop(0, right, size, size),
        image.crop(bottom, 0, size, size),
        image.crop(bottom, right, size, size),
        image.crop(bottom / 2, right / 2, size, size),
    ]
}

/// The five crops of the image, then the five of its mirror.
pub fn ten_crop(image: &Image, size: usize) -> [Image; 10] {
    let [a, b, c, d, e] = five_crop(image, size);
    let [f, g, h, i, j] = five_crop(&image.mirrored(), size);
    [a, b, c, d, e, f, g, h, i, j]
}
