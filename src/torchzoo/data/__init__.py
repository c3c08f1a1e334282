"""Datasets on disk: the catalog of what each dataset is (files, URLs, published checksums), the downloader
behind ``torchzoo data download`` and the inventory behind ``torchzoo data list``. Never imports torch."""
