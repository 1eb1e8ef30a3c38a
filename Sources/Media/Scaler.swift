import CFFmpeg

/// A decoded picture as packed 8-bit RGB, in stored (unrotated) orientation. Row stride is `width * 3`.
struct RGBImage {
    var width = 0
    var height = 0
    var pixels: [UInt8] = []
}

/// libswscale: converts decoded frames of any pixel format to packed RGB24 at their own size.
///
/// swscale only converts colour here; the resize happens afterwards in `CropResize`, because swscale's
/// SWS_BILINEAR widens its filter when shrinking (it anti-aliases), while the model was trained on
/// tf.image.resize's plain two-tap bilinear (spec Part A.4). Colour matrix and range follow the frame's tags.
final class Scaler {
    private var context: OpaquePointer?

    deinit {
        sws_freeContext(context)
    }

    func convert(_ frame: Frame, into image: inout RGBImage) throws(MediaError) {
        let width = Int32(frame.width), height = Int32(frame.height)
        let format = AVPixelFormat(rawValue: frame.format)
        guard format != AV_PIX_FMT_NONE, width > 0, height > 0 else {
            throw MediaError.corrupt("a video frame has no pixel format or size")
        }
        // Cached: a new context is built only when the frame's size or format changes.
        context = sws_getCachedContext(context, width, height, format, width, height, AV_PIX_FMT_RGB24,
                                       SWS_BILINEAR | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nil, nil, nil)
        guard context != nil else { throw MediaError.unsupportedFormat("cannot convert pixel format \(format.rawValue) to RGB") }
        try applyColorspace(of: frame)

        image.width = Int(width)
        image.height = Int(height)
        let byteCount = Int(width) * Int(height) * 3
        if image.pixels.count != byteCount { image.pixels = [UInt8](repeating: 0, count: byteCount) }
        let rows = image.pixels.withUnsafeMutableBufferPointer { buffer -> Int32 in
            var plane: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            var stride = width * 3
            return sws_scale(context, frame.data, frame.lineSizes, 0, height, &plane, &stride)
        }
        try check(rows)
    }

    /// YUV -> RGB with the matrix the frame declares (BT.601 when unspecified, as FFmpeg's own tools assume)
    /// and its range (limited 16-235 unless tagged full).
    private func applyColorspace(of frame: Frame) throws(MediaError) {
        let space = frame.pointer.pointee.colorspace
        let coefficients = sws_getCoefficients(space == AVCOL_SPC_UNSPECIFIED ? SWS_CS_DEFAULT : Int32(space.rawValue))
        let fullRange: Int32 = frame.pointer.pointee.color_range == AVCOL_RANGE_JPEG ? 1 : 0
        var inverse: UnsafeMutablePointer<Int32>?
        var table: UnsafeMutablePointer<Int32>?
        var sourceRange: Int32 = 0, destinationRange: Int32 = 0
        var brightness: Int32 = 0, contrast: Int32 = 0, saturation: Int32 = 0
        // Fails (-1) for RGB sources, which have no matrix to set; their conversion is already exact.
        guard sws_getColorspaceDetails(context, &inverse, &sourceRange, &table, &destinationRange,
                                       &brightness, &contrast, &saturation) >= 0 else { return }
        try check(sws_setColorspaceDetails(context, coefficients, fullRange, table, destinationRange,
                                           brightness, contrast, saturation))
    }
}
