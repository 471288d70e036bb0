"""The one map, one screen (一张图 / 一屏观): map layers and live indicators over the order hub (see ``registry``)."""
