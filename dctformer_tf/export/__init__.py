"""SavedModel export (docs/design.md §4): a trained run as a SavedModel with serving
signatures that encode an image, score a sequence and sample images, loadable without this
package.

May import `dct`, `data`, `model`, `runs`, `sampling` and `evaluation`; never `train` or
`cli`, never gin.
"""
