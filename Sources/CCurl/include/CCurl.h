#ifndef CCURL_H
#define CCURL_H

#include <curl/curl.h>

/* Typed wrappers over libcurl's variadic setopt/getinfo calls, which Swift cannot call directly. */

typedef size_t (*CCurl_data_callback)(char *buffer, size_t size, size_t nitems, void *userdata);

CURLcode CCurl_easy_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode CCurl_easy_setopt_off(CURL *handle, CURLoption option, curl_off_t value);
CURLcode CCurl_easy_setopt_string(CURL *handle, CURLoption option, const char *value);
CURLcode CCurl_easy_setopt_pointer(CURL *handle, CURLoption option, void *value);
CURLcode CCurl_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value);
CURLcode CCurl_easy_setopt_callback(CURL *handle, CURLoption option, CCurl_data_callback value);

typedef int (*CCurl_seek_callback)(void *userdata, curl_off_t offset, int origin);
/* CURLOPT_SEEKFUNCTION, so libcurl can rewind an upload body to replay it on a fresh connection. */
CURLcode CCurl_easy_setopt_seek(CURL *handle, CCurl_seek_callback value);

CURLcode CCurl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value);
CURLcode CCurl_easy_getinfo_off(CURL *handle, CURLINFO info, curl_off_t *value);
CURLcode CCurl_easy_getinfo_pointer(CURL *handle, CURLINFO info, void **value);

CURLMcode CCurl_multi_setopt_long(CURLM *handle, CURLMoption option, long value);

/* Accessors for the fields of a CURLMsg, whose payload is a union. */
CURLMSG CCurl_msg_kind(const CURLMsg *msg);
CURL *CCurl_msg_easy(const CURLMsg *msg);
CURLcode CCurl_msg_result(const CURLMsg *msg);

#endif
