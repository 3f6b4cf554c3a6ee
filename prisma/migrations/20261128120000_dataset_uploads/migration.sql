-- AlterTable
ALTER TABLE "datasets" ADD COLUMN     "bytes" BIGINT NOT NULL DEFAULT 0,
ADD COLUMN     "file_count" INTEGER NOT NULL DEFAULT 0,
ADD COLUMN     "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
ADD COLUMN     "upload_id" UUID,
ADD COLUMN     "validated_at" TIMESTAMPTZ(3),
ADD COLUMN     "validation" JSONB;

-- CreateTable
CREATE TABLE "dataset_uploads" (
    "id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'open',
    "files" JSONB NOT NULL,
    "manifest_sha256" TEXT NOT NULL,
    "file_count" INTEGER NOT NULL,
    "total_bytes" BIGINT NOT NULL,
    "blob_count" INTEGER NOT NULL,
    "blob_bytes" BIGINT NOT NULL,
    "multipart" JSONB NOT NULL DEFAULT '{}',
    "uploaded_blobs" JSONB NOT NULL DEFAULT '[]',
    "blobs_uploaded" INTEGER NOT NULL DEFAULT 0,
    "bytes_uploaded" BIGINT NOT NULL DEFAULT 0,
    "blobs_reused" INTEGER NOT NULL DEFAULT 0,
    "bytes_reused" BIGINT NOT NULL DEFAULT 0,
    "bytes_rejected" BIGINT NOT NULL DEFAULT 0,
    "dataset_id" UUID,
    "last_error" TEXT,
    "claimed_at" TIMESTAMPTZ(3),
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "completed_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "dataset_uploads_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "dataset_uploads_user_id_created_at_idx" ON "dataset_uploads"("user_id", "created_at");

-- CreateIndex
CREATE INDEX "dataset_uploads_status_expires_at_idx" ON "dataset_uploads"("status", "expires_at");

-- AddForeignKey
ALTER TABLE "dataset_uploads" ADD CONSTRAINT "dataset_uploads_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

