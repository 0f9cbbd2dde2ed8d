# arrwcdc image: nothing is pulled, so it builds offline. The static binary
# (CGO_ENABLED=0) is compiled on the host by `make docker-build` into
# bin/docker/ and copied into an empty image.
FROM scratch
COPY bin/docker/arrwcdc /arrwcdc
COPY docker/data/ /data/
VOLUME ["/data"]
EXPOSE 4222 6222 8222 8000 8080
ENTRYPOINT ["/arrwcdc"]
CMD ["serve", "--nats-listen=0.0.0.0:4222", "--http-listen=0.0.0.0:8000", "--data-dir=/data"]
