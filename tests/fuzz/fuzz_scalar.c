/*
 * fuzz_scalar.c: proxy/h1parse.c again, built without SIMD and with its public
 * names prefixed by scalar_, so that the fuzz targets compare both code paths on
 * every input (fuzz_common.h declares them).
 */
#define H1P_NO_SIMD 1
#define h1p_parse_request scalar_h1p_parse_request
#define h1p_parse_response scalar_h1p_parse_response
#define h1p_response_body scalar_h1p_response_body
#define h1p_chunked_init scalar_h1p_chunked_init
#define h1p_chunked_feed scalar_h1p_chunked_feed
#define h1p_error_status scalar_h1p_error_status
#define h1p_error_str scalar_h1p_error_str
#include "../../proxy/h1parse.c"
