import CFFmpeg

/// A decoded picture as packed 8-bit RGB, in stored (unrotated) orientation, laid out as swscale needs its
/// destination: rows `rowBytes` apart (a multiple of 64 that holds the width rounded up to 8 pixels, not
/// `width * 3`) in a padded `CBuffer`.
final class RGBImage {
    private(set) var width = 0
    private(set) var height = 0
    private(set) var rowBytes = 0
    fileprivate private(set) var buffer: CBuffer<UInt8>?

    /// Reuses the buffer while the size stays the same, which it does for every frame of one stream.
    fileprivate func reshape(width: Int, height: Int) throws(MediaError) {
        guard width != self.width || height != self.height || buffer == nil else { return }
        // swscale's x86 YUV->RGB converters write rows in whole groups of 8 pixels and, when the stride cannot hold
        // the last group, leave the row's last 1-7 pixels unwritten (valgrind: CropResize read uninitialised bytes
        // of an 18-pixel-wide frame, the media sweep's finding). So a row holds the width rounded up to 8 pixels.
        let rowBytes = ((width + 7) / 8 * 8 * 3 + GuardPages.alignment - 1) & ~(GuardPages.alignment - 1)
        buffer = try CBuffer(count: rowBytes * height)
        (self.width, self.height, self.rowBytes) = (width, height, rowBytes)
    }

    /// Pixel (x, y)'s red byte is at `y * rowBytes + x * 3`.
    func withPixels<R>(_ body: (Span<UInt8>) -> R) -> R {
        guard let buffer else { return body(Span()) }
        return buffer.withElements(rowBytes * height, body)
    }
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
                                       SWS_BILINEAR, nil, nil, nil)
        guard context != nil else { throw MediaError.unsupportedFormat("cannot convert pixel format \(format.rawValue) to RGB") }
        try applyColorspace(of: frame)

        try image.reshape(width: Int(width), height: Int(height))
        // sws_scale reads four plane pointers and four strides whatever the format (it checks them all for
        // alignment): one pointer and one stride let it read our stack past them (valgrind: "Conditional jump
        // depends on uninitialised value" in sws_scale, the media sweep's finding). RGB24 fills the first.
        let planes: [UnsafeMutablePointer<UInt8>?] = [image.buffer?.pointer, nil, nil, nil]
        let strides: [Int32] = [Int32(image.rowBytes), 0, 0, 0]
        try check(sws_scale(context, frame.data, frame.lineSizes, 0, height, planes, strides))
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
