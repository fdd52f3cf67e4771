"""The tests' S3 server (testkit.object_store) is a real one, and pyarrow's S3 filesystem
behaves over it as the Parquet export relies on: what is written reads back whole, an object
appears only once its upload is closed, and a wrong key is an error, not a missing file."""

import dataclasses
import os

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyarrow import fs

MIB = 1024 * 1024
# Above pyarrow's part size (10 MiB): written in parts, as a large export is.
MULTIPART = 20 * MIB


def write(storage: fs.S3FileSystem, path: str, data: bytes) -> None:
    with storage.open_output_stream(path) as out:
        out.write(data)


def read(storage: fs.S3FileSystem, path: str) -> bytes:
    with storage.open_input_stream(path) as stream:
        return stream.read()


def test_an_object_reads_back_byte_for_byte(s3, bucket):
    storage = s3.filesystem()
    data = os.urandom(3 * MIB + 17)
    write(storage, f"{bucket}/usage.bin", data)
    assert read(storage, f"{bucket}/usage.bin") == data
    assert storage.get_file_info(f"{bucket}/usage.bin").size == len(data)


def test_an_overwrite_replaces_the_object_whole(s3, bucket):
    storage = s3.filesystem()
    first, second = os.urandom(5 * MIB + 3), os.urandom(2 * MIB + 1)
    write(storage, f"{bucket}/usage.bin", first)
    write(storage, f"{bucket}/usage.bin", second)
    assert read(storage, f"{bucket}/usage.bin") == second
    assert storage.get_file_info(f"{bucket}/usage.bin").size == len(second)


def test_until_an_overwrite_is_closed_readers_get_the_old_object_whole(s3, bucket):
    # Parts sent as they are written, not in the background: some are on the server below.
    storage = s3.filesystem(background_writes=False)
    first, second = os.urandom(3 * MIB), os.urandom(MULTIPART)
    write(storage, f"{bucket}/usage.bin", first)
    out = storage.open_output_stream(f"{bucket}/usage.bin")
    for start in range(0, len(second), MIB):
        out.write(second[start : start + MIB])
    assert read(storage, f"{bucket}/usage.bin") == first
    out.close()
    assert read(storage, f"{bucket}/usage.bin") == second


def test_a_reader_open_across_an_overwrite_reads_on_in_the_new_object(s3, bucket):
    """pyarrow reads an object in ranges and pins no version of it: an overwrite while a
    reader is open shows the reader a mix (a shorter new object reads as zeros past its end).
    An object that may be being read is never to be overwritten."""
    storage = s3.filesystem()
    first, second = b"1" * 4 * MIB, b"2" * 4 * MIB
    write(storage, f"{bucket}/usage.bin", first)
    with storage.open_input_file(f"{bucket}/usage.bin") as reader:
        head = reader.read(MIB)
        write(storage, f"{bucket}/usage.bin", second)
        rest = reader.read()
    assert head + rest == first[:MIB] + second[MIB:]


def test_a_multipart_upload_is_neither_listed_nor_readable_until_closed(s3, bucket):
    storage = s3.filesystem(background_writes=False)
    data = os.urandom(MULTIPART)
    out = storage.open_output_stream(f"{bucket}/usage.bin")
    for start in range(0, len(data), MIB):
        out.write(data[start : start + MIB])
    assert storage.get_file_info(fs.FileSelector(bucket, recursive=True)) == []
    assert storage.get_file_info(f"{bucket}/usage.bin").type == fs.FileType.NotFound
    with pytest.raises(FileNotFoundError):
        read(storage, f"{bucket}/usage.bin")
    out.close()
    [listed] = storage.get_file_info(fs.FileSelector(bucket, recursive=True))
    assert (listed.path, listed.size) == (f"{bucket}/usage.bin", len(data))
    assert read(storage, f"{bucket}/usage.bin") == data


def test_a_zstd_parquet_file_on_s3_reads_back_in_duckdb(s3, bucket, tmp_path):
    """DuckDB reads a local copy: its httpfs extension is not installed here, and cannot be
    fetched offline."""
    storage = s3.filesystem()
    table = pa.table(
        {
            "org": ["acme", "acme", "globex"],
            "day": pa.array([20_454, 20_455, 20_454], pa.int32()).cast(pa.date32()),
            "input_tokens": pa.array([1_200, 0, 2**40], pa.int64()),
        }
    )
    pq.write_table(table, f"{bucket}/usage.parquet", filesystem=storage, compression="zstd")
    copy = tmp_path / "usage.parquet"
    fs.copy_files(
        f"{bucket}/usage.parquet",
        str(copy),
        source_filesystem=storage,
        destination_filesystem=fs.LocalFileSystem(),
    )
    with duckdb.connect() as connection:
        rows = connection.execute(
            "SELECT org, day, input_tokens FROM read_parquet(?) ORDER BY org, day", [str(copy)]
        ).fetchall()
        codecs = connection.execute(
            "SELECT DISTINCT compression FROM parquet_metadata(?)", [str(copy)]
        ).fetchall()
    assert rows == [tuple(row.values()) for row in table.to_pylist()]
    assert codecs == [("ZSTD",)]


def test_a_wrong_secret_key_is_an_error_not_a_missing_object(s3, bucket):
    write(s3.filesystem(), f"{bucket}/usage.bin", b"usage")
    impostor = dataclasses.replace(s3, secret_key="not-the-secret").filesystem()
    # pyarrow starts a multipart upload as it opens a stream for writing.
    with pytest.raises(OSError, match="SIGNATURE_DOES_NOT_MATCH during CreateMultipartUpload"):
        impostor.open_output_stream(f"{bucket}/other.bin")
    with pytest.raises(OSError, match="SIGNATURE_DOES_NOT_MATCH during ListObjectsV2"):
        impostor.get_file_info(fs.FileSelector(bucket))
    # A HEAD's refusal has no body to give the reason in.
    with pytest.raises(OSError, match="ACCESS_DENIED during HeadObject") as refused:
        read(impostor, f"{bucket}/usage.bin")
    assert not isinstance(refused.value, FileNotFoundError)
    assert [info.path for info in s3.filesystem().get_file_info(fs.FileSelector(bucket))] == [
        f"{bucket}/usage.bin"
    ]


def test_the_standard_aws_variables_name_the_server_and_the_identity(s3, bucket, monkeypatch):
    """FileSystem.from_uri takes the endpoint from AWS_ENDPOINT_URL (S3FileSystem() does not:
    it goes to AWS), the key from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."""
    for name, value in s3.environ.items():
        monkeypatch.setenv(name, value)
    storage, path = fs.FileSystem.from_uri(f"s3://{bucket}/usage.bin")
    write(storage, path, b"usage")
    assert read(s3.filesystem(), f"{bucket}/usage.bin") == b"usage"
