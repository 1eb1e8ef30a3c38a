/// Turns one stored RGB picture into one model frame (spec Part A.4): rotate as the display matrix says,
/// resize so the short side is `resizeShort` (the long side floor(long * short' / short)), and centre-crop
/// `cropSize` at offset floor((side - crop) / 2).
///
/// The resize is tf.image.resize's bilinear without anti-aliasing (half-pixel centres, two taps per axis,
/// float32 arithmetic in TensorFlow's order), whose float result DMVR casts back to uint8 (truncating) before
/// `float32(u8) / 255 * 2 - 1`. That last step belongs to the model (its tubelet embedding reads the bytes), so
/// frames stay 8-bit, a quarter of the memory, until then. Only the cropped pixels are computed, and rotation is folded into the source
/// indexing, so the picture is read once and never copied.
struct CropResize {
    let resizeShort: Int
    let cropSize: Int

    /// Writes `cropSize * cropSize * 3` bytes at `offset` into `output` (row-major, RGB interleaved).
    func callAsFunction(_ image: RGBImage, rotation: Int, into output: inout [UInt8], at offset: Int) {
        let turned = rotation == 90 || rotation == 270
        let shownWidth = turned ? image.height : image.width
        let shownHeight = turned ? image.width : image.height
        let short = min(shownWidth, shownHeight)
        let resizedWidth = shownWidth == short ? resizeShort : shownWidth * resizeShort / short
        let resizedHeight = shownHeight == short ? resizeShort : shownHeight * resizeShort / short

        // Byte offset of shown pixel (y, x) in the stored picture is rowTerm[y] + columnTerm[x].
        let (rowTerm, columnTerm) = Self.rotatedOffsets(image, rotation: rotation, shownWidth: shownWidth, shownHeight: shownHeight)
        let rows = Self.taps(crop: cropSize, start: (resizedHeight - cropSize) / 2, resized: resizedHeight, source: shownHeight)
        let columns = Self.taps(crop: cropSize, start: (resizedWidth - cropSize) / 2, resized: resizedWidth, source: shownWidth)

        image.withPixels { pixels in
            var out = output.mutableSpan
            var o = offset
            for row in rows {
                let top = rowTerm[row.lower], bottom = rowTerm[row.upper]
                for column in columns {
                    let left = columnTerm[column.lower], right = columnTerm[column.upper]
                    for channel in 0..<3 {
                        let topLeft = Float(pixels[top + left + channel]), topRight = Float(pixels[top + right + channel])
                        let bottomLeft = Float(pixels[bottom + left + channel]), bottomRight = Float(pixels[bottom + right + channel])
                        let upper = topLeft + (topRight - topLeft) * column.weight
                        let lower = bottomLeft + (bottomRight - bottomLeft) * column.weight
                        let value = upper + (lower - upper) * row.weight
                        out[o] = UInt8(min(max(value, 0), 255))
                        o += 1
                    }
                }
            }
        }
    }

    /// One output coordinate's two source neighbours and the weight of the second (TF's
    /// compute_interpolation_weights with half-pixel centres).
    struct Tap {
        var lower: Int
        var upper: Int
        var weight: Float
    }

    static func taps(crop: Int, start: Int, resized: Int, source: Int) -> [Tap] {
        let scale = Float(source) / Float(resized)
        return (start..<start + crop).map { i in
            let position = (Float(i) + 0.5) * scale - 0.5
            let floor = position.rounded(.down)
            return Tap(lower: max(Int(floor), 0), upper: min(Int(position.rounded(.up)), source - 1), weight: position - floor)
        }
    }

    /// Rotation by quarter turns counter-clockwise, as index arithmetic: shown (y, x) reads stored
    /// 90: (x, W-1-y); 180: (H-1-y, W-1-x); 270: (H-1-x, y), with W, H the stored size.
    static func rotatedOffsets(_ image: RGBImage, rotation: Int, shownWidth: Int, shownHeight: Int) -> ([Int], [Int]) {
        let rowBytes = image.rowBytes
        let w = image.width, h = image.height
        switch rotation {
        case 90:
            return ((0..<shownHeight).map { (w - 1 - $0) * 3 }, (0..<shownWidth).map { $0 * rowBytes })
        case 180:
            return ((0..<shownHeight).map { (h - 1 - $0) * rowBytes }, (0..<shownWidth).map { (w - 1 - $0) * 3 })
        case 270:
            return ((0..<shownHeight).map { $0 * 3 }, (0..<shownWidth).map { (h - 1 - $0) * rowBytes })
        default:
            return ((0..<shownHeight).map { $0 * rowBytes }, (0..<shownWidth).map { $0 * 3 })
        }
    }
}
