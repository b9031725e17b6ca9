import Testing
@testable import LiveDomain

/// LiveFrames' read-ahead: which frames a miss maps.
struct ReadAheadTests {
    @Test func aMissAnywhereMapsOneFrame() {
        #expect(LiveFrames.nextRun(for: 100, after: 0..<0, run: 1) == (100..<101, 1))
        #expect(LiveFrames.nextRun(for: 100, after: 10..<20, run: 8).range == 100..<101)
        #expect(LiveFrames.nextRun(for: 15, after: 10..<20, run: 8).range == 15..<16)   // inside the last mapping
    }

    @Test func aMissJustPastTheLastMappingDoublesUpToTheCap() {
        #expect(LiveFrames.nextRun(for: 101, after: 100..<101, run: 1) == (101..<103, 2))
        #expect(LiveFrames.nextRun(for: 103, after: 101..<103, run: 2) == (103..<107, 4))
        #expect(LiveFrames.nextRun(for: 500, after: 436..<500, run: 64) == (500..<564, 64))
    }

    @Test func downwardSearchesMapDownwards() {
        #expect(LiveFrames.nextRun(for: 99, after: 100..<101, run: 1) == (98..<100, 2))
        #expect(LiveFrames.nextRun(for: 97, after: 98..<100, run: 2) == (94..<98, 4))
    }

    /// No run wraps around the frame numbers' ends.
    @Test func edgesMapOneFrame() {
        #expect(LiveFrames.nextRun(for: 0, after: 1..<2, run: 4).range == 0..<1)
        #expect(LiveFrames.nextRun(for: 2, after: 3..<4, run: 4).range == 2..<3)
        #expect(LiveFrames.nextRun(for: .max - 1, after: .max - 2 ..< .max - 1, run: 4).range == .max - 1 ..< .max)
    }

    @Test func theMissedFrameIsAskedFirst() {
        #expect(LiveFrames.frames(of: 94..<98, around: 97) == [97, 94, 95, 96])
    }
}
