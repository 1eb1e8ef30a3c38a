// The FFmpeg 5.1 headers the Media target uses, plus the few things Swift cannot import from them.
#include <errno.h>
#include <libavformat/avformat.h>
#include <libavformat/avio.h>
#include <libavcodec/avcodec.h>
#include <libavutil/avutil.h>
#include <libavutil/channel_layout.h>
#include <libavutil/display.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>

// AVERROR_EOF, AVERROR_INVALIDDATA and friends are built with the FFERRTAG macro and AVERROR(e) negates an errno
// on POSIX: macros Swift does not import, so each value the Media target compares against gets a function.
static inline int avmae_averror_eof(void) { return AVERROR_EOF; }
static inline int avmae_averror_eagain(void) { return AVERROR(EAGAIN); }
static inline int avmae_averror_enomem(void) { return AVERROR(ENOMEM); }
static inline int avmae_averror_einval(void) { return AVERROR(EINVAL); }
static inline int avmae_averror_invaliddata(void) { return AVERROR_INVALIDDATA; }
static inline int avmae_averror_decoder_not_found(void) { return AVERROR_DECODER_NOT_FOUND; }
static inline int avmae_averror_demuxer_not_found(void) { return AVERROR_DEMUXER_NOT_FOUND; }
static inline int avmae_averror_stream_not_found(void) { return AVERROR_STREAM_NOT_FOUND; }
static inline int avmae_averror_patchwelcome(void) { return AVERROR_PATCHWELCOME; }

// AV_NOPTS_VALUE is a cast expression ((int64_t)UINT64_C(0x8000000000000000)), which Swift does not import.
static inline int64_t avmae_nopts_value(void) { return AV_NOPTS_VALUE; }

// AVFrame.data and .linesize import as 8-tuples; sws_scale and swr_convert want plain pointers to them.
static inline const uint8_t *const *avmae_frame_data(const AVFrame *f) { return (const uint8_t *const *)f->data; }
static inline const int *avmae_frame_linesize(const AVFrame *f) { return f->linesize; }
