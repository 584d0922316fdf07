/* MD5_CTX and MD5_Update are deprecated in OpenSSL 3 but remain the only way to run MD5's block function
   from a state that was advanced elsewhere (CCrypto_md5_blocks). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "CCrypto.h"
#include <openssl/md5.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

struct CCrypto_digest {
    EVP_MD_CTX *ctx;
    const EVP_MD *md;
};

int CCrypto_sha256(const void *data, size_t length, uint8_t out[32]) {
    unsigned int n = 0;
    return EVP_Digest(data, length, out, &n, EVP_sha256(), NULL);
}

int CCrypto_md5(const void *data, size_t length, uint8_t out[16]) {
    unsigned int n = 0;
    return EVP_Digest(data, length, out, &n, EVP_md5(), NULL);
}

int CCrypto_hmac_sha256(const void *key, size_t key_length, const void *data, size_t length, uint8_t out[32]) {
    unsigned int n = 0;
    return HMAC(EVP_sha256(), key, (int)key_length, data, length, out, &n) != NULL;
}

CCrypto_digest *CCrypto_digest_new(int kind) {
    CCrypto_digest *d = OPENSSL_zalloc(sizeof(*d));
    if (!d) return NULL;
    d->md = kind == 1 ? EVP_md5() : EVP_sha256();
    d->ctx = EVP_MD_CTX_new();
    if (!d->ctx || !EVP_DigestInit_ex(d->ctx, d->md, NULL)) {
        EVP_MD_CTX_free(d->ctx);
        OPENSSL_free(d);
        return NULL;
    }
    return d;
}

int CCrypto_digest_update(CCrypto_digest *digest, const void *data, size_t length) {
    return EVP_DigestUpdate(digest->ctx, data, length);
}

int CCrypto_digest_final(CCrypto_digest *digest, uint8_t *out) {
    unsigned int n = 0;
    if (!EVP_DigestFinal_ex(digest->ctx, out, &n)) return 0;
    if (!EVP_DigestInit_ex(digest->ctx, digest->md, NULL)) return 0;
    return (int)n;
}

void CCrypto_digest_free(CCrypto_digest *digest) {
    if (!digest) return;
    EVP_MD_CTX_free(digest->ctx);
    OPENSSL_free(digest);
}

void CCrypto_md5_blocks(uint32_t state[4], const void *data, size_t blocks) {
    MD5_CTX c;
    MD5_Init(&c);
    c.A = state[0];
    c.B = state[1];
    c.C = state[2];
    c.D = state[3];
    /* Whole blocks only, so nothing is buffered and the length counters, never finalised, do not matter. */
    MD5_Update(&c, data, blocks * 64);
    state[0] = c.A;
    state[1] = c.B;
    state[2] = c.C;
    state[3] = c.D;
}

int CCrypto_verify_with_certificate(const char *pem, size_t pem_length, int sha256, const void *data, size_t length,
                                    const uint8_t *signature, size_t signature_length) {
    BIO *bio = BIO_new_mem_buf(pem, (int)pem_length);
    if (!bio) return -1;
    X509 *cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!cert) return -1;
    EVP_PKEY *key = X509_get_pubkey(cert);
    X509_free(cert);
    if (!key) return -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = 0;
    if (ctx && EVP_DigestVerifyInit(ctx, NULL, sha256 ? EVP_sha256() : EVP_sha1(), NULL, key) == 1) {
        rc = EVP_DigestVerify(ctx, signature, signature_length, data, length) == 1 ? 1 : 0;
    }
    EVP_MD_CTX_free(ctx);
    EVP_PKEY_free(key);
    return rc;
}
