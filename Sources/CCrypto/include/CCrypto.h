#ifndef CCRYPTO_H
#define CCRYPTO_H

#include <stddef.h>
#include <stdint.h>

/* One-shot and incremental digests over OpenSSL libcrypto. Return 1 on success, 0 on failure. */

int CCrypto_sha256(const void *data, size_t length, uint8_t out[32]);
int CCrypto_md5(const void *data, size_t length, uint8_t out[16]);
int CCrypto_hmac_sha256(const void *key, size_t key_length, const void *data, size_t length, uint8_t out[32]);

/* Incremental digest; kind 0 = SHA-256, 1 = MD5. Opaque handle, freed by CCrypto_digest_free. */
typedef struct CCrypto_digest CCrypto_digest;
CCrypto_digest *CCrypto_digest_new(int kind);
int CCrypto_digest_update(CCrypto_digest *digest, const void *data, size_t length);
/* Writes the digest into out (32 or 16 bytes) and returns its length; the context can be reused after. */
int CCrypto_digest_final(CCrypto_digest *digest, uint8_t *out);
void CCrypto_digest_free(CCrypto_digest *digest);

/* MD5's block function over `blocks` whole 64-byte blocks, from and back into state[0..3] (A, B, C, D). */
void CCrypto_md5_blocks(uint32_t state[4], const void *data, size_t blocks);

/* Verifies an RSA or ECDSA signature over data with the public key of a PEM certificate, hashing with SHA-1
   (sha256 == 0) or SHA-256. Returns 1 when valid, 0 when not, -1 when the certificate cannot be read. */
int CCrypto_verify_with_certificate(const char *pem, size_t pem_length, int sha256, const void *data, size_t length,
                                    const uint8_t *signature, size_t signature_length);

#endif
