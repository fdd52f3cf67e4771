"""Export to object storage (DESIGN §11): the events and the hourly figures as Parquet files
under a bucket's prefix or a directory, exactly once, with a manifest per partition."""
