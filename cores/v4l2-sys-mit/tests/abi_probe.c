/* Prints V4L2 ABI facts as the C compiler sees them, one "name value" line each, for
 * tests/abi.rs to compare with the committed Rust bindings. Values are decimal. */
#include <stddef.h>
#include <stdio.h>
#include <linux/videodev2.h>

#define SIZE(t) printf("sizeof:%s %zu\n", #t, sizeof(struct t))
#define OFFSET(t, f) printf("offsetof:%s.%s %zu\n", #t, #f, offsetof(struct t, f))
#define VALUE(c) printf("value:%s %llu\n", #c, (unsigned long long)(c))

int main(void) {
    SIZE(v4l2_capability);
    SIZE(v4l2_format);
    SIZE(v4l2_pix_format);
    SIZE(v4l2_buffer);
    SIZE(v4l2_plane);
    SIZE(v4l2_requestbuffers);
    SIZE(v4l2_fmtdesc);
    SIZE(v4l2_frmsizeenum);
    SIZE(v4l2_frmivalenum);
    SIZE(v4l2_streamparm);
    SIZE(v4l2_queryctrl);
    SIZE(v4l2_querymenu);
    SIZE(v4l2_control);
    SIZE(v4l2_ext_control);
    SIZE(v4l2_ext_controls);
    SIZE(v4l2_timecode);
    OFFSET(v4l2_buffer, timestamp);
    OFFSET(v4l2_buffer, sequence);
    OFFSET(v4l2_buffer, memory);
    OFFSET(v4l2_buffer, m);
    OFFSET(v4l2_buffer, length);
    OFFSET(v4l2_format, fmt);
    OFFSET(v4l2_pix_format, sizeimage);
    OFFSET(v4l2_streamparm, parm);
    OFFSET(v4l2_ext_controls, controls);
    VALUE(V4L2_CAP_VIDEO_CAPTURE);
    VALUE(V4L2_CAP_STREAMING);
    VALUE(V4L2_CAP_DEVICE_CAPS);
    VALUE(V4L2_BUF_TYPE_VIDEO_CAPTURE);
    VALUE(V4L2_MEMORY_MMAP);
    VALUE(V4L2_FIELD_NONE);
    VALUE(V4L2_CID_BRIGHTNESS);
    VALUE(V4L2_CID_EXPOSURE_AUTO);
    VALUE(V4L2_FRMSIZE_TYPE_DISCRETE);
    VALUE(V4L2_FRMIVAL_TYPE_DISCRETE);
    VALUE(VIDIOC_QUERYCAP);
    VALUE(VIDIOC_ENUM_FMT);
    VALUE(VIDIOC_G_FMT);
    VALUE(VIDIOC_S_FMT);
    VALUE(VIDIOC_REQBUFS);
    VALUE(VIDIOC_QUERYBUF);
    VALUE(VIDIOC_QBUF);
    VALUE(VIDIOC_DQBUF);
    VALUE(VIDIOC_STREAMON);
    VALUE(VIDIOC_STREAMOFF);
    VALUE(VIDIOC_G_PARM);
    VALUE(VIDIOC_S_PARM);
    VALUE(VIDIOC_QUERYCTRL);
    VALUE(VIDIOC_G_CTRL);
    VALUE(VIDIOC_S_CTRL);
    VALUE(VIDIOC_ENUM_FRAMESIZES);
    VALUE(VIDIOC_ENUM_FRAMEINTERVALS);
    VALUE(VIDIOC_G_EXT_CTRLS);
    VALUE(VIDIOC_QUERY_EXT_CTRL);
    return 0;
}
