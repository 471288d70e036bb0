"""Knowledge base (知识库) and instant answers (秒回); reply-quality checks before an order is closed."""
